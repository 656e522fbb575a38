// @vitest-environment happy-dom
/** LabView against a scripted lab: live validation with the engine's message, the rank diagram, queue, run with progress events, cancel, errors. */
import { describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import LabView from '../../renderer/src/views/LabView.vue';
import { useRunsStore } from '../../renderer/src/stores/runs';
import { useNavStore } from '../../renderer/src/stores/nav';
import { scriptedLab } from './labFixtures';
import { useScriptedLab, wait } from './mountHelpers';

vi.mock('vue-echarts', async () => (await import('./mountHelpers')).chartStub());

let s: ReturnType<typeof scriptedLab>;
useScriptedLab((fresh) => (s = fresh));

async function mountLab() {
  const w = mount(LabView);
  await flushPromises();
  return w;
}

describe('LabView', () => {
  it('checks the spec with the engine and draws its ranks', async () => {
    const w = await mountLab();
    expect(s.calls.checkSpec).toEqual(['tp=2']);
    expect(w.get('[data-testid="spec-string"]').text()).toBe('tp=2');
    expect(w.get('[data-testid="spec-verdict"]').classes()).toContain('good');
    expect(w.findAll('[data-testid="mesh-rank"]').map((r) => r.text())).toEqual(['r0L0–3', 'r1L0–3']);
  });

  it("shows the engine's own message for a spec that does not fit, and no diagram", async () => {
    const w = await mountLab();
    await w.get('[data-testid="axis-tp"]').setValue('3');
    await wait(160);
    await flushPromises();
    expect(s.calls.checkSpec.at(-1)).toBe('tp=3');
    expect(w.get('[data-testid="spec-message"]').text()).toBe('tp=3 does not divide 8 attention heads; use tp ∈ {1,2,4,8}');
    expect(w.get('[data-testid="spec-verdict"]').classes()).toContain('bad');
    expect(w.find('[data-testid="mesh-diagram"]').exists()).toBe(false);
    expect((w.get('[data-testid="run"]').element as HTMLButtonElement).disabled).toBe(true);
  });

  it('queues specs and runs them as one job, with progress from events, and cancels', async () => {
    const w = await mountLab();
    await w.get('[data-testid="queue-add"]').trigger('click');
    await w.get('[data-testid="axis-tp"]').setValue('4');
    await wait(160);
    await flushPromises();
    await w.get('[data-testid="queue-add"]').trigger('click');
    expect(w.findAll('[data-testid="queue"] li').map((l) => l.text().replace('×', '').trim())).toEqual(['tp=2', 'tp=4']);
    await w.get('[data-testid="wl-prefill"]').trigger('click');
    await w.get('[data-testid="run"]').trigger('click');
    await flushPromises();
    expect(s.calls.startBench).toEqual([{ model: 'synth-llama-tiny', specs: ['tp=2', 'tp=4'], workload: 'prefill', promptLen: 16, outputLen: 8, batch: 1, reps: 3, threadsPerRank: 1, device: 'cpu', verify: true }]);
    expect(w.findAll('[data-testid="queue"] li')).toHaveLength(0);
    expect(w.get('[data-testid="job"]').attributes('data-state')).toBe('running');

    s.emit({ kind: 'progress', task: 'bench:job-1', done: 1, total: 3, message: 'tp=2: prefill rep 2/5' });
    s.emit({ kind: 'progress', task: 'bench:other-job', done: 0, total: 1, message: 'not this one' });
    s.emit({ kind: 'job', job: { jobId: 'job-1', state: 'running', specs: ['single', 'tp=2', 'tp=4'], done: 1, runIds: ['r-single'], message: 'running tp=2', error: null } });
    await flushPromises();
    expect(w.get('[data-testid="job"]').text()).toContain('1/3');
    expect(w.get('[data-testid="job"]').text()).toContain('tp=2: prefill rep 2/5');
    expect(w.get('[data-testid="job"]').text()).not.toContain('not this one');
    expect(w.get('.fill').attributes('style')).toContain('width: 33%');

    await w.get('[data-testid="job-cancel"]').trigger('click');
    expect(s.calls.cancelBench).toEqual(['job-1']);
    s.emit({ kind: 'job', job: { jobId: 'job-1', state: 'done', specs: ['single', 'tp=2', 'tp=4'], done: 3, runIds: ['r-single', 'r-tp2'], message: 'done', error: null } });
    await flushPromises();
    expect(w.get('[data-testid="job"]').attributes('data-state')).toBe('done');
    expect(w.find('[data-testid="job-cancel"]').exists()).toBe(false);
    // the finished job's runs become the Compare selection
    expect(useRunsStore().selected).toEqual(['r-single', 'r-tp2']);
    await w.get('[data-testid="job-compare"]').trigger('click');
    await flushPromises();
    expect(useNavStore().view).toBe('compare');
  });

  it('shows why a run could not start', async () => {
    s.lab.startBench = () => Promise.reject(new Error('startBench is not available in this build yet'));
    const w = await mountLab();
    await w.get('[data-testid="run"]').trigger('click');
    await flushPromises();
    expect(w.get('[data-testid="run-error"]').text()).toBe('startBench is not available in this build yet');
  });
});

describe('LabView serving workload', () => {
  it('sends requests, rate, max batch and the SLOs that are set', async () => {
    const w = await mountLab();
    await w.get('[data-testid="wl-serving"]').trigger('click');
    const inputs = w.findAll('.side input[type="number"]');
    const byLabel = (l: string) => inputs.find((i) => i.element.parentElement!.textContent!.includes(l))!;
    await byLabel('Requests').setValue('12');
    await byLabel('Rate').setValue('4');
    await byLabel('SLO TTFT').setValue('200');
    await w.get('[data-testid="run"]').trigger('click');
    await flushPromises();
    expect(s.calls.startBench[0]).toMatchObject({ workload: 'serving', requests: 12, rate: 4, maxBatch: 8, slo: { ttftMs: 200 } });
    expect(s.calls.startBench[0]).not.toHaveProperty('reps');
  });
});
