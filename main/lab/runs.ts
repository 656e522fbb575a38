/**
 * The Lab API's experiment methods: spec checks, benchmark jobs, the runs
 * list, run records and traces, reports and the claims table.
 *
 * Runs live as folders in one runs directory (PARALAB_RUNS, else
 * ~/.local/share/paralab/runs), shared by the app, the web host and the CLI:
 * a `lab bench` from a terminal shows up in the app's runs list. Benchmark
 * jobs run in this process one after another (two at once would share the
 * cores and spoil each other's numbers); progress and state changes go out
 * as 'progress' / 'job' events.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { BenchJob, BenchRequest, CheckSpecRequest, ClaimRow, LabApi, LabEvent, ReportFile, ReportRequest, RunRecord, RunSummary, SpecCheck, TraceEvent } from './contract';
import { defaultRunsDir, listRunFolders, readRunFolder, readTrace, summarize } from './record';
import { sweepTempFolders } from './durable';
import { checkClaims } from './claims';
import type { BenchOptions, BenchResult } from './bench';

export interface RunsOptions {
  emit: (e: LabEvent) => void;
  /** defaults to defaultRunsDir(), read at each call */
  runsDir?: string | (() => string);
  /** HTML → PDF (Electron: webContents.printToPDF); defaults to headless Chromium */
  printPdf?: (html: string) => Promise<Buffer>;
  /** the benchmark runner (tests pass a fake) */
  bench?: (o: BenchOptions) => Promise<BenchResult>;
}

export type RunsApi = Pick<LabApi, 'checkSpec' | 'startBench' | 'cancelBench' | 'listJobs' | 'listRuns' | 'getRun' | 'getTrace' | 'deleteRun' | 'exportReport' | 'claims'>;

const badRequest = (message: string) => Object.assign(new Error(message), { code: 'bad_request' });

/** A run id must name a folder directly inside the runs directory. */
function runDir(runsDir: string, id: string): string {
  if (typeof id !== 'string' || !id || id.startsWith('.') || /[/\\]/.test(id)) throw badRequest(`'${String(id)}' is not a run id`);
  const dir = path.join(runsDir, id);
  if (!existsSync(path.join(dir, 'run.json'))) throw Object.assign(new Error(`run '${id}' not found in ${runsDir}`), { code: 'not_found' });
  return dir;
}

/** The engine's verdict on a spec for a model, without starting a rank or writing a preset's weights. */
export async function checkSpec(req: CheckSpecRequest): Promise<SpecCheck> {
  const { parseSpec, formatSpec, SpecError } = await import('../engine/parallel/spec');
  const { validateSpecForModel, SUPPORTED_AXES } = await import('../engine/parallel/validate');
  const { buildMesh, groupOf } = await import('../engine/parallel/mesh');
    const { isPresetId, presetConfig } = await import('../engine/model/presets');
  const empty = { world: 0, degrees: { dp: 0, pp: 0, tp: 0, sp: 0, ep: 0 }, spImpl: null, notes: [], ranks: [] };
  let spec;
  try {
    spec = parseSpec(req.parallel);
  } catch (e) {
    if (e instanceof SpecError) return { ok: false, message: e.message, spec: req.parallel, ...empty };
    throw e;
  }
  const base = { spec: formatSpec(spec), world: spec.world, degrees: { dp: spec.dp, pp: spec.pp, tp: spec.tp, sp: spec.sp, ep: spec.ep }, spImpl: spec.sp > 1 || spec.spImpl === 'megatron' ? spec.spImpl : null };
  let config;
  let modelName = req.model;
  try {
    if (isPresetId(req.model)) config = presetConfig(req.model);
    else {
      const { resolveModel } = await import('../engine/model/catalog');
      const m = await resolveModel(req.model);
      config = m.config;
      modelName = m.id;
    }
  } catch (e) {
    return { ok: false, message: (e as Error).message, ...base, notes: [], ranks: [] };
  }
  let notes: string[];
  try {
    notes = validateSpecForModel(spec, config, { supported: [...SUPPORTED_AXES], modelName }).notes;
  } catch (e) {
    if (e instanceof SpecError) return { ok: false, message: e.message, ...base, notes: [], ranks: [] };
    throw e;
  }
  const mesh = buildMesh(spec);
  const kinds = ['tp', 'pp', 'dp', 'sp', 'ep'] as const;
  const ranks = mesh.ranks.map((p) => {
    const groups: SpecCheck['ranks'][number]['groups'] = {};
    for (const k of kinds) {
      const g = groupOf(p, k);
      if (g.length > 1) groups[k] = [...g];
    }
    const [a, b] = mesh.layerRange(p.coord.pp, config.layers);
    return { rank: p.rank, coord: { ...p.coord }, layers: [a, b] as [number, number], groups };
  });
  return { ok: true, message: null, ...base, notes, ranks };
}

function validateBench(req: BenchRequest): void {
  if (!req || typeof req.model !== 'string' || !req.model) throw badRequest('bench: give a model (preset id or folder)');
  if (!Array.isArray(req.specs) || req.specs.length === 0) throw badRequest('bench: give at least one parallel spec (e.g. "tp=2")');
  if (!['prefill', 'decode', 'serving'].includes(req.workload)) throw badRequest(`bench: workload must be prefill, decode or serving; got '${String(req.workload)}'`);
  for (const [k, min] of [['promptLen', 1], ['outputLen', 1], ['batch', 1], ['requests', 1], ['threadsPerRank', 1], ['seed', 0], ['reps', 1], ['maxBatch', 1]] as const) {
    const v = req[k];
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw badRequest(`bench: ${k} must be an integer ≥ ${min}; got ${String(v)}`);
  }
  if (req.rate !== undefined && !(Number.isFinite(req.rate) && req.rate >= 0)) throw badRequest(`bench: rate must be ≥ 0 requests/s; got ${String(req.rate)}`);
}

export function createRunsApi(o: RunsOptions): RunsApi {
  const dirOf = () => (typeof o.runsDir === 'function' ? o.runsDir() : (o.runsDir ?? defaultRunsDir()));
  const jobs = new Map<string, { job: BenchJob; controller: AbortController }>();
  let queue: Promise<void> = Promise.resolve();
  // what a crashed writer left (hidden temp folders) goes when the lab starts
  try {
    sweepTempFolders(dirOf());
  } catch {
    // an unreadable runs folder is reported by the first listRuns, not here
  }

  const publish = (job: BenchJob) => o.emit({ kind: 'job', job: { ...job, specs: [...job.specs], runIds: [...job.runIds] } });

  async function runJob(req: BenchRequest, job: BenchJob, controller: AbortController): Promise<void> {
    if (controller.signal.aborted) return;
    job.message = 'starting';
    publish(job);
    const run = o.bench ?? (await import('./bench')).bench;
    try {
      await run({
        model: req.model,
        specs: req.specs,
        workload: req.workload,
        promptLen: req.promptLen ?? (req.workload === 'prefill' ? 128 : 16),
        outputLen: req.outputLen ?? (req.workload === 'prefill' ? 1 : 32),
        batch: req.batch ?? 1,
        reps: req.reps ?? 3,
        maxBatch: req.maxBatch,
        slo: req.slo,
        requests: req.requests ?? 16,
        rate: req.rate ?? 0,
        threadsPerRank: req.threadsPerRank,
        timeoutMs: req.timeoutMs,
        device: req.device,
        seed: req.seed ?? 0,
        verify: req.verify === true,
        outDir: dirOf(),
        signal: controller.signal,
        onProgress: (p) => {
          job.message = `${p.label}: ${p.message}`;
          o.emit({ kind: 'progress', task: `bench:${job.jobId}`, done: p.done, total: p.total, message: job.message });
        },
        onRecord: (r) => {
          job.done++;
          job.runIds.push(r.id);
          publish(job);
        },
      });
      job.state = 'done';
      job.message = `${job.runIds.length} run(s) written`;
    } catch (e) {
      if (controller.signal.aborted) {
        job.state = 'cancelled';
        job.message = 'cancelled';
      } else {
        job.state = 'failed';
        job.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
        job.message = 'failed';
      }
    }
    publish(job);
  }

  async function records(ids: string[]): Promise<{ runs: RunRecord[]; traces: TraceEvent[][] }> {
    if (!Array.isArray(ids) || ids.length === 0) throw badRequest('give at least one run id');
    const root = dirOf();
    const dirs = ids.map((id) => runDir(root, id));
    return { runs: dirs.map((d) => readRunFolder(d)), traces: dirs.map((d) => readTrace(d)) };
  }

  return {
    checkSpec: (req) => checkSpec(req),

    async startBench(req) {
      validateBench(req);
      const { orderSpecs } = await import('./bench');
      let specs: string[];
      try {
        specs = orderSpecs(req.specs);
      } catch (e) {
        throw badRequest((e as Error).message);
      }
      const job: BenchJob = { jobId: randomUUID(), state: 'running', specs, done: 0, runIds: [], message: 'queued', error: null };
      const controller = new AbortController();
      jobs.set(job.jobId, { job, controller });
      publish(job);
      queue = queue.then(() => runJob(req, job, controller));
      return { ...job, specs: [...specs], runIds: [] };
    },

    async cancelBench(jobId) {
      const entry = jobs.get(jobId);
      if (!entry) throw Object.assign(new Error(`no benchmark job '${jobId}'`), { code: 'not_found' });
      if (entry.job.state !== 'running') return;
      entry.controller.abort();
      if (entry.job.message === 'queued') {
        entry.job.state = 'cancelled';
        entry.job.message = 'cancelled';
        publish(entry.job);
      }
    },

    async listJobs() {
      return [...jobs.values()].map(({ job }) => ({ ...job, specs: [...job.specs], runIds: [...job.runIds] }));
    },

    async listRuns(): Promise<RunSummary[]> {
      const out: RunSummary[] = [];
      for (const d of listRunFolders(dirOf())) {
        try {
          out.push(summarize(readRunFolder(d)));
        } catch {
          // a foreign or broken folder is not a run; it stays on disk untouched
        }
      }
      return out;
    },

    async getRun(id) {
      return readRunFolder(runDir(dirOf(), id));
    },

    async getTrace(id) {
      return readTrace(runDir(dirOf(), id));
    },

    async deleteRun(id) {
      rmSync(runDir(dirOf(), id), { recursive: true, force: true });
    },

    async exportReport(req: ReportRequest): Promise<ReportFile> {
      const { runs, traces } = await records(req.runIds);
      const { renderReport } = await import('./report');
      const r = await renderReport(runs, { format: req.format, lang: req.lang, traces, printPdf: o.printPdf });
      const binary = req.format === 'pdf';
      return { fileName: r.fileName, mime: r.mime, encoding: binary ? 'base64' : 'utf8', data: r.data.toString(binary ? 'base64' : 'utf8') };
    },

    async claims(runIds): Promise<ClaimRow[]> {
      return checkClaims((await records(runIds)).runs);
    },
  };
}
