/**
 * Which models the lab can see, and turning a `--model` argument into a
 * folder + config.
 *
 * Sources, in listing order: the synthetic presets (summarised from their
 * configs, without writing them), folders given by the caller, folders in
 * `PARALAB_MODELS` (each a model folder or a folder of model folders), and
 * the Hugging Face hub cache (`models--org--name/snapshots/<rev>/`). A folder
 * that cannot be read is listed as not runnable with the reason as its note;
 * listing never throws because of one bad folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelSource, ModelSummary } from '../types';
import { loadModelConfig } from './config';
import { ModelError, errorText } from './errors';
import { expandHome, hfHubDir, paralabCacheDir, paralabModelPaths } from './paths';
import { PRESET_IDS, isPresetId, presetSpec } from './presets';
import { ensurePreset, isPresetComplete, presetDir, type ProgressFn } from './synth';
import { paramCount, type ModelConfig } from './types';
import { WeightStore, expectedTensors, validateWeights } from './weights';
import { importLlama2c, isLlama2cPath, readLlama2cHeader } from './llama2c';

/** What a user should know before picking a spec for an OLMoE-style model (its q/k RMSNorm spans the whole projection). */
export const QK_PROJECTION_NOTE = 'q/k norm over the whole projection: tensor parallelism is refused (dp, pp, sp and ep run)';

/** A note for configs that run under some specs only. */
const noteFor = (c: ModelConfig): string | null => (c.qkNorm && c.qkNormScope === 'projection' ? QK_PROJECTION_NOTE : null);

type Env = Record<string, string | undefined>;

export interface ListModelsOptions {
  /** extra folders, each a model folder or a folder of model folders */
  paths?: string[];
  /** environment to read PARALAB_MODELS / PARALAB_CACHE / HF_HOME from (default process.env) */
  env?: Env;
}

const BYTES_PER: Record<ModelConfig['dtype'], number> = { float32: 4, float16: 2, bfloat16: 2 };

function summary(id: string, name: string, source: ModelSource, dir: string | null, c: ModelConfig, sizeBytes: number): ModelSummary {
  return {
    id, name, source, path: dir,
    family: c.family, hfArchitecture: c.hfArchitecture, params: paramCount(c),
    layers: c.layers, hidden: c.hidden, heads: c.heads, kvHeads: c.kvHeads, vocabSize: c.vocabSize,
    experts: c.moe?.experts ?? 0, topK: c.moe?.topK ?? 0, dtype: c.dtype, sizeBytes,
    runnable: true,
    note: noteFor(c),
  };
}

/** An entry for a folder that could not be read: everything zero, the reason in `note`. */
function brokenSummary(id: string, name: string, source: ModelSource, dir: string | null, note: string): ModelSummary {
  return {
    id, name, source, path: dir, family: 'unknown', hfArchitecture: '', params: 0, layers: 0, hidden: 0,
    heads: 0, kvHeads: 0, vocabSize: 0, experts: 0, topK: 0, dtype: '', sizeBytes: 0, runnable: false, note,
  };
}

function presetSummaries(cacheDir: string): ModelSummary[] {
  return PRESET_IDS.map((id) => {
    const spec = presetSpec(id);
    const dir = presetDir(id, cacheDir);
    let bytes = 0;
    for (const shape of expectedTensors(spec.config).values()) bytes += shape.reduce((a, b) => a * b, 1) * BYTES_PER[spec.config.dtype];
    return summary(id, spec.name, 'preset', isPresetComplete(dir, id) ? dir : null, spec.config, bytes);
  });
}

/** Summary of one model folder: config parsed, weights opened and checked against it (headers only). */
export function summarizeFolder(dir: string, source: ModelSource, name = path.basename(dir)): ModelSummary {
  let config: ModelConfig;
  try {
    config = loadModelConfig(dir);
  } catch (e) {
    return brokenSummary(dir, name, source, dir, errorText(e));
  }
  let store: WeightStore | null = null;
  try {
    store = WeightStore.open(dir);
    validateWeights(store, config);
    const s = summary(dir, name, source, dir, config, store.totalBytes);
    if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) {
      s.note = [s.note, 'no tokenizer.json: pass --prompt-ids'].filter(Boolean).join('; ');
    }
    return s;
  } catch (e) {
    return { ...summary(dir, name, source, dir, config, 0), runnable: false, note: errorText(e) };
  } finally {
    store?.close();
  }
}

const isModelFolder = (dir: string) => fs.existsSync(path.join(dir, 'config.json'));

function subfolders(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true })
      .filter((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.'))
      .map((d) => path.join(dir, d.name))
      .sort();
  } catch {
    return [];
  }
}

/** The model folders a user-given path stands for; a path with none is listed with the reason. */
function scanPath(p: string): ModelSummary[] {
  const dir = path.resolve(expandHome(p));
  if (isLlama2cPath(dir)) return [llama2cSummary(dir)];
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return [brokenSummary(dir, path.basename(dir), 'folder', null, `${dir}: folder not found`)];
  if (isModelFolder(dir)) return [summarizeFolder(dir, 'folder')];
  const models = subfolders(dir).filter(isModelFolder);
  if (models.length === 0) {
    return [brokenSummary(dir, path.basename(dir), 'folder', dir, `${dir}: no model folders here (a model folder has config.json)`)];
  }
  return models.map((m) => summarizeFolder(m, 'folder'));
}

export const LLAMA2C_NOTE = 'llama2.c checkpoint, imported to the cache on first run; it has no tokenizer: prompt with token ids (text shows only byte pieces, other pieces as ⟨id⟩)';

/** A llama2.c checkpoint, summarized from its header (the import happens when it first runs). */
function llama2cSummary(file: string): ModelSummary {
  try {
    const { config, bytes } = readLlama2cHeader(file);
    const s = summary(file, path.basename(file), 'folder', file, config, bytes);
    return { ...s, note: [s.note, LLAMA2C_NOTE].filter(Boolean).join('; ') };
  } catch (e) {
    return brokenSummary(file, path.basename(file), 'folder', file, errorText(e));
  }
}

/** `models--org--name` → its snapshot for refs/main, else the newest snapshot. */
function hfSnapshot(repoDir: string): string | null {
  const snapshots = path.join(repoDir, 'snapshots');
  try {
    const main = fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8').trim();
    if (main && fs.existsSync(path.join(snapshots, main))) return path.join(snapshots, main);
  } catch {
    // no refs/main: fall back to the newest snapshot
  }
  const all = subfolders(snapshots);
  if (all.length === 0) return null;
  return all.map((d) => ({ d, t: fs.statSync(d).mtimeMs })).sort((a, b) => b.t - a.t)[0].d;
}

function scanHfCache(hub: string): ModelSummary[] {
  const out: ModelSummary[] = [];
  for (const repo of subfolders(hub)) {
    const base = path.basename(repo);
    if (!base.startsWith('models--')) continue;
    const snap = hfSnapshot(repo);
    if (snap && isModelFolder(snap)) out.push(summarizeFolder(snap, 'hf-cache', base.slice('models--'.length).replace('--', '/')));
  }
  return out;
}

function realpathOr(p: string | null): string | null {
  if (p === null) return null;
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Presets, then given folders, PARALAB_MODELS, and the Hugging Face cache; a folder appears once. */
export async function listModels(opts: ListModelsOptions = {}): Promise<ModelSummary[]> {
  const env = opts.env ?? process.env;
  const found = [
    ...presetSummaries(paralabCacheDir(env)),
    ...[...(opts.paths ?? []), ...paralabModelPaths(env)].flatMap(scanPath),
    ...scanHfCache(hfHubDir(env)),
  ];
  const seen = new Set<string>();
  return found.filter((m) => {
    const key = m.source === 'preset' ? m.id : realpathOr(m.path) ?? m.id;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export interface ResolvedModel {
  /** the preset id, or the absolute folder path */
  id: string;
  dir: string;
  config: ModelConfig;
  source: ModelSource;
}

export interface ResolveOptions {
  cacheDir?: string;
  onProgress?: ProgressFn;
  env?: Env;
}

/** `org/name` → its snapshot in the Hugging Face cache, if downloaded. */
function hfCacheFolder(repoId: string, env: Env): string | null {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) return null;
  const repo = path.join(hfHubDir(env), `models--${repoId.replace('/', '--')}`);
  const snap = fs.existsSync(repo) ? hfSnapshot(repo) : null;
  return snap && isModelFolder(snap) ? snap : null;
}

/**
 * A `--model` value → folder and config: a preset id (written to the cache
 * on first use), a model folder path, or an `org/name` already in the Hugging
 * Face cache. Anything else is a ModelError that lists what is accepted.
 */
export async function resolveModel(idOrPath: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  if (isPresetId(idOrPath)) {
    const dir = await ensurePreset(idOrPath, { cacheDir: opts.cacheDir ?? paralabCacheDir(env), onProgress: opts.onProgress });
    return { id: idOrPath, dir, config: loadModelConfig(dir), source: 'preset' };
  }
  const asPath = path.resolve(expandHome(idOrPath));
  if (isLlama2cPath(asPath)) {
    const dir = await importLlama2c(asPath, { cacheDir: opts.cacheDir ?? paralabCacheDir(env) });
    return { id: asPath, dir, config: loadModelConfig(dir), source: 'folder' };
  }
  if (fs.existsSync(asPath)) return { id: asPath, dir: asPath, config: loadModelConfig(asPath), source: 'folder' };
  const cached = hfCacheFolder(idOrPath, env);
  if (cached) return { id: cached, dir: cached, config: loadModelConfig(cached), source: 'hf-cache' };
  const looksLikePath = /[\\/]/.test(idOrPath) || idOrPath.startsWith('.') || idOrPath.startsWith('~');
  if (looksLikePath) {
    throw new ModelError('config-missing', `${asPath}: folder not found (and '${idOrPath}' is not a downloaded Hugging Face repo in ${hfHubDir(env)}); pass an existing model folder, a llama2.c checkpoint (.bin) or a preset id (${PRESET_IDS.join(', ')})`);
  }
  throw new ModelError('unknown-preset', `unknown model '${idOrPath}': the presets are ${PRESET_IDS.join(', ')}; a path to a Hugging Face model folder or a llama2.c checkpoint (.bin) is also accepted`);
}
