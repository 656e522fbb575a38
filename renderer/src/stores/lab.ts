/**
 * Lab domain: the mesh being built (form → spec string), the engine's live
 * verdict on it (checkSpec, latest request wins), the workload, the queue of
 * specs to run, and the benchmark jobs with their progress (from 'job' and
 * 'progress' events). A finished job hands its run ids to the runs store.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { BenchJob, BenchRequest, DeviceKindName, SpecCheck, WorkloadKind } from '../../../main/lab/contract';
import { lab } from '../api';
import { DEFAULT_FORM, parseForm, specString, worldOf, type MeshForm } from '../spec';
import { errorText, onLabEvent } from './events';
import { useRunsStore } from './runs';

export interface WorkloadForm {
  kind: WorkloadKind;
  promptLen: number;
  outputLen: number;
  batch: number;
  requests: number;
  rate: number;
  /** prefill / decode: batches measured back to back */
  reps: number;
  /** serving: most sequences in the running batch */
  maxBatch: number;
  /** serving: SLOs for goodput in ms (0 = none) */
  sloTtftMs: number;
  sloTpotMs: number;
}

export const useLabStore = defineStore('lab', () => {
  const model = ref('synth-llama-tiny');
  const form = ref<MeshForm>({ ...DEFAULT_FORM });
  const device = ref<DeviceKindName>('cpu');
  const threads = ref(1);
  const verify = ref(true);
  const workload = ref<WorkloadForm>({ kind: 'decode', promptLen: 16, outputLen: 8, batch: 1, requests: 8, rate: 0, reps: 3, maxBatch: 8, sloTtftMs: 0, sloTpotMs: 0 });
  const spec = computed(() => specString(form.value));
  const world = computed(() => worldOf(form.value));

  const check = ref<SpecCheck | null>(null);
  const checking = ref(false);
  const checkError = ref<string | null>(null);
  let checkSeq = 0;

  const queue = ref<string[]>([]);
  const jobs = ref<BenchJob[]>([]);
  /** latest progress per job (the lab's task is `bench:<jobId>`), or under the task name for others */
  const progress = ref<Record<string, { done: number; total: number; message: string }>>({});
  const startError = ref<string | null>(null);
  const starting = ref(false);
  const running = computed(() => jobs.value.filter((j) => j.state === 'running'));

  onLabEvent('job', (e) => upsert(e.job));
  onLabEvent('progress', (e) => {
    if (e.task === 'chat') return;
    const key = e.task.startsWith('bench:') ? e.task.slice('bench:'.length) : e.task;
    progress.value = { ...progress.value, [key]: { done: e.done, total: e.total, message: e.message } };
  });

  function upsert(job: BenchJob): void {
    const before = jobs.value.find((j) => j.jobId === job.jobId);
    jobs.value = before ? jobs.value.map((j) => (j.jobId === job.jobId ? job : j)) : [job, ...jobs.value];
    if (job.state !== 'running' && before?.state === 'running') {
      const { [job.jobId]: _finished, ...rest } = progress.value;
      progress.value = rest;
      if (job.runIds.length) void useRunsStore().refresh(job.runIds);
    }
  }

  /** Asks the engine about the current spec; only the latest answer is kept. */
  async function validate(): Promise<void> {
    const mine = ++checkSeq;
    checking.value = true;
    try {
      const c = await lab().checkSpec({ model: model.value, parallel: spec.value });
      if (mine === checkSeq) {
        check.value = c;
        checkError.value = null;
      }
    } catch (e) {
      if (mine === checkSeq) {
        check.value = null;
        checkError.value = errorText(e);
      }
    } finally {
      if (mine === checkSeq) checking.value = false;
    }
  }

  /** Loads a queued spec back into the mesh form. */
  function edit(s: string): void {
    form.value = parseForm(s);
  }

  function enqueue(s = spec.value): void {
    if (!queue.value.includes(s)) queue.value = [...queue.value, s];
  }
  function dequeue(s: string): void {
    queue.value = queue.value.filter((q) => q !== s);
  }

  function request(): BenchRequest {
    const w = workload.value;
    const specs = queue.value.length ? [...queue.value] : [spec.value];
    return {
      model: model.value,
      specs,
      workload: w.kind,
      promptLen: w.promptLen,
      outputLen: w.outputLen,
      batch: w.batch,
      ...(w.kind === 'serving' ? { requests: w.requests, rate: w.rate, maxBatch: w.maxBatch } : { reps: w.reps }),
      ...(w.kind === 'serving' && (w.sloTtftMs > 0 || w.sloTpotMs > 0)
        ? { slo: { ...(w.sloTtftMs > 0 ? { ttftMs: w.sloTtftMs } : {}), ...(w.sloTpotMs > 0 ? { tpotMs: w.sloTpotMs } : {}) } }
        : {}),
      threadsPerRank: threads.value,
      device: device.value,
      verify: verify.value,
    };
  }

  async function run(): Promise<BenchJob | null> {
    starting.value = true;
    startError.value = null;
    try {
      const job = await lab().startBench(request());
      upsert(job);
      queue.value = [];
      return job;
    } catch (e) {
      startError.value = errorText(e);
      return null;
    } finally {
      starting.value = false;
    }
  }

  async function cancel(jobId: string): Promise<void> {
    try {
      await lab().cancelBench(jobId);
    } catch (e) {
      startError.value = errorText(e);
    }
  }

  async function loadJobs(): Promise<void> {
    try {
      const list = await lab().listJobs();
      for (const j of list) upsert(j);
    } catch {
      // an older lab without jobs: the list stays empty, runs still show
    }
  }

  return { model, form, device, threads, verify, workload, spec, world, check, checking, checkError, queue, jobs, running, progress, startError, starting, validate, edit, enqueue, dequeue, request, run, cancel, loadJobs };
});
