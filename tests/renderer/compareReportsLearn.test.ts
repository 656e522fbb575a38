// @vitest-environment happy-dom
/** CompareView, ReportsView and LearnView against a scripted lab: run selection drives the charts, the trace and the claims; export downloads; labels follow the language. */
import { describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import CompareView from '../../renderer/src/views/CompareView.vue';
import ReportsView from '../../renderer/src/views/ReportsView.vue';
import LearnView from '../../renderer/src/views/LearnView.vue';
import { setLocale } from '../../renderer/src/i18n';
import { SERIES } from '../../renderer/src/charts/palette';
import { record, scriptedLab } from './labFixtures';
import { freshApp, option, useScriptedLab } from './mountHelpers';

vi.mock('vue-echarts', async () => (await import('./mountHelpers')).chartStub());

let s: ReturnType<typeof scriptedLab>;
useScriptedLab((fresh) => (s = fresh));

describe('CompareView', () => {
  it('selects recent runs and draws every chart from their records', async () => {
    const w = mount(CompareView);
    await flushPromises();
    expect(w.findAll('[data-testid="run-row"]')).toHaveLength(3);
    expect(option(w.get('[data-testid="chart-throughput"]')).series[0].data).toEqual([100, 150, 190]);
    expect(option(w.get('[data-testid="chart-latency"]')).series.map((x: { name: string }) => x.name)).toEqual(['p50', 'p99']);
    expect(option(w.get('[data-testid="chart-scaling"]')).series.map((x: { name: string }) => x.name)).toEqual(['DP', 'TP']);
    expect(option(w.get('[data-testid="chart-memory"]')).series[0].itemStyle.color).toBe(SERIES.weights);
    expect(option(w.get('[data-testid="chart-comm"]')).xAxis.data).toEqual(['tp=2 · all_reduce']);
    expect(w.get('[data-testid="badges"]').text()).toContain('matches single');
    expect(w.get('[data-testid="badges"]').text()).toContain('not checked');
  });

  it('draws the per-rank timeline of the first multi-rank run from its trace', async () => {
    const w = mount(CompareView);
    await flushPromises();
    expect(s.calls.getTrace).toEqual(['r-tp2']);
    const tl = option(w.get('[data-testid="chart-timeline"]'));
    expect(tl.yAxis.data).toEqual(['rank 0 · tp0', 'rank 1']);
    expect(tl.dataZoom).toHaveLength(2);
    expect(w.text()).toContain('compute 0.7 ms');
  });

  it('follows the selection: unchecking a run takes it out of the charts', async () => {
    const w = mount(CompareView);
    await flushPromises();
    await w.findAll('[data-testid="run-check"]')[2].trigger('change');
    await flushPromises();
    expect(option(w.get('[data-testid="chart-throughput"]')).xAxis.data).toEqual(['single', 'tp=2']);
  });

  it('adds an expert-load heatmap for MoE runs', async () => {
    s = scriptedLab({ records: [record('m', 'dp=2,ep=2', { dp: 2, ep: 2 }, { tokS: 10, ttft: 5, moe: true })] });
    freshApp(s.lab);
    const w = mount(CompareView);
    await flushPromises();
    expect(option(w.get('[data-testid="chart-experts"]')).series[0].type).toBe('heatmap');
  });

  it('says what to do when there are no runs', async () => {
    s = scriptedLab({ records: [] });
    freshApp(s.lab);
    const w = mount(CompareView);
    await flushPromises();
    expect(w.get('[data-testid="compare-empty"]').text()).toContain('Select one or more runs');
    expect(w.text()).toContain('No runs yet');
  });
});

describe('ReportsView', () => {
  it('exports the selected runs as a download and shows the claims', async () => {
    const clicks: { href: string; download: string }[] = [];
    const orig = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicks.push({ href: this.href, download: this.download });
    };
    URL.createObjectURL = vi.fn(() => 'blob:report');
    try {
      const w = mount(ReportsView);
      await flushPromises();
      expect(w.findAll('[data-testid="claim-row"]').map((r) => r.attributes('data-verdict'))).toEqual(['borne_out', 'borne_out', 'not_measured']);
      expect(s.calls.claims.at(-1)).toEqual(['r-single', 'r-tp2', 'r-dp2']);
      await w.get('[data-testid="export-md"]').trigger('click');
      await flushPromises();
      expect(s.calls.exportReport).toEqual([{ runIds: ['r-single', 'r-tp2', 'r-dp2'], format: 'md', lang: 'en' }]);
      expect(clicks).toEqual([{ href: 'blob:report', download: 'paralab-report.md' }]);
      expect(w.get('[data-testid="export-result"]').text()).toBe('Saved: paralab-report.md');
      setLocale('zh-CN');
      await flushPromises();
      expect(w.get('[data-testid="claims-table"]').text()).toContain('TP 降低延迟');
      expect(w.get('[data-testid="claims-table"]').text()).toContain('得到支持');
    } finally {
      HTMLAnchorElement.prototype.click = orig;
    }
  });

  it('shows a failed export with the lab’s message', async () => {
    s.lab.exportReport = () => Promise.reject(new Error('pdf needs Chromium; export html and print it'));
    const w = mount(ReportsView);
    await flushPromises();
    await w.get('[data-testid="export-pdf"]').trigger('click');
    await flushPromises();
    expect(w.get('[data-testid="export-result"]').text()).toBe('Export failed: pdf needs Chromium; export html and print it');
  });
});

describe('LearnView', () => {
  it('explains each strategy with a diagram and shows the measured verdicts beside it', async () => {
    const w = mount(LearnView);
    await flushPromises();
    for (const k of ['DP', 'PP', 'TP', 'SP', 'EP']) {
      expect(w.find(`[data-testid="learn-${k}"] [data-testid="diagram-${k}"]`).exists()).toBe(true);
    }
    expect(w.get('[data-testid="learn-TP"]').text()).toContain('TP lowers latency');
    expect(w.get('[data-testid="learn-TP"]').text()).toContain('borne out');
    expect(w.get('[data-testid="learn-PP"]').find('[data-testid="claims-table"]').exists()).toBe(false);
    // a claim nothing measured yet is one line with what to run, not a row of dashes
    expect(w.get('[data-testid="learn-EP"]').find('[data-testid="claims-table"]').exists()).toBe(false);
    expect(w.get('[data-testid="learn-unmeasured-EP"]').text()).toContain('1 claim');
    expect(w.get('[data-testid="learn-status"]').text()).toContain('3 runs');
  });

  it('without runs it says how to get measurements', async () => {
    s = scriptedLab({ records: [] });
    freshApp(s.lab);
    const w = mount(LearnView);
    await flushPromises();
    expect(s.calls.claims).toEqual([]);
    expect(w.get('[data-testid="learn-status"]').text()).toContain('No runs on this machine yet');
  });
});
