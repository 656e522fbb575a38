// @vitest-environment happy-dom
/** ModelsView renders the store's models from a fake Lab API; the chart component is stubbed (happy-dom has no canvas). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { enableAutoUnmount, flushPromises, mount } from '@vue/test-utils';
import { createPinia, setActivePinia } from 'pinia';
import ModelsView from '../../renderer/src/views/ModelsView.vue';
import { setLab } from '../../renderer/src/api';
import { setLocale } from '../../renderer/src/i18n';
import type { LabApi } from '../../main/lab/contract';
import { MODELS, fakeLab } from './fixtures';

vi.mock('vue-echarts', async () => {
  const { defineComponent, h } = await import('vue');
  return {
    default: defineComponent({
      props: { option: { type: Object, required: true } },
      setup: (props) => () => h('div', { 'data-names': JSON.stringify((props.option as { yAxis: { data: string[] } }).yAxis.data) }),
    }),
  };
});

// a view left mounted keeps its timers and store watchers: it would talk to the next test's lab
enableAutoUnmount(afterEach);
beforeEach(() => {
  localStorage.clear();
  setLocale('en');
  setActivePinia(createPinia());
});
afterEach(() => setLab(null));

async function mountWith(lab: LabApi) {
  setLab(lab);
  const w = mount(ModelsView);
  await flushPromises();
  return w;
}

describe('ModelsView', () => {
  it('renders one row per model with human-readable numbers', async () => {
    const w = await mountWith(fakeLab().lab);
    const rows = w.findAll('[data-testid="model-row"]');
    expect(rows.map((r) => r.attributes('data-model-id'))).toEqual(MODELS.map((m) => m.id));
    const small = rows[2];
    expect(small.text()).toContain('synth-llama-small');
    expect(small.get('[data-testid="params"]').text()).toBe('155.3M');
    expect(small.text()).toContain('16 / 4');
    expect(small.text()).toContain('592.4 MiB');
    expect(small.text()).toContain('runnable');
    const moe = rows[1];
    expect(moe.text()).toContain('8 × top-2');
    expect(moe.text()).toContain('listed only');
    expect(moe.text()).toContain('MoE runs once expert parallelism lands');
    expect(w.get('[data-testid="model-count"]').text()).toBe('3 models');
  });

  it('draws the chart from the same models (largest on top)', async () => {
    const w = await mountWith(fakeLab().lab);
    expect(JSON.parse(w.get('[data-testid="params-chart"]').attributes('data-names')!)).toEqual(['synth-llama-tiny', 'synth-moe-tiny', 'synth-llama-small']);
  });

  it('adds a model folder: lists again with the path, and remembers it', async () => {
    const { lab, requests } = fakeLab();
    const w = await mountWith(lab);
    await w.get('[data-testid="path-input"]').setValue('  /models/Qwen2.5-0.5B ');
    await w.get('form').trigger('submit');
    await flushPromises();
    expect(requests.at(-1)).toEqual({ paths: ['/models/Qwen2.5-0.5B'] });
    expect(w.find('[data-model-id="/models/Qwen2.5-0.5B"]').exists()).toBe(true);
    expect(w.find('.chip').text()).toContain('/models/Qwen2.5-0.5B');
    expect(JSON.parse(localStorage.getItem('paralab.modelPaths')!)).toEqual(['/models/Qwen2.5-0.5B']);
  });

  it('shows the lab error instead of rows when listing fails', async () => {
    const { lab } = fakeLab();
    const w = await mountWith({ ...lab, listModels: () => Promise.reject(new Error('PARALAB_MODELS: /nope: folder not found')) });
    expect(w.get('[data-testid="models-error"]').text()).toContain('/nope: folder not found');
    expect(w.findAll('[data-testid="model-row"]')).toHaveLength(0);
    expect(w.text()).toContain('No models found.');
  });

  it('estimates per device count whether each model fits, from the host memory', async () => {
    const w = await mountWith(fakeLab().lab);
    expect((w.get('[data-testid="fit-memory"]').element as HTMLInputElement).value).toBe('24');
    const small = w.get('[data-fit-model="synth-llama-small"]');
    expect(small.findAll('td[data-fits]').map((c) => c.attributes('data-fits'))).toEqual(['true', 'true', 'true', 'true']);
    await w.get('[data-testid="fit-memory"]').setValue('0.25');
    const cells = w.get('[data-fit-model="synth-llama-small"]').findAll('td[data-fits]');
    expect(cells.map((c) => c.attributes('data-fits'))).toEqual(['false', 'false', 'true', 'true']);
    expect(cells[0].text()).toMatch(/^✗ 7\d\d\.\d MiB$/);
  });
});
