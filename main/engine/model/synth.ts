/**
 * Synthetic models: deterministic seeded weights written in Hugging Face
 * layout (config.json, generation_config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json), like vLLM's dummy load format, so
 * every strategy runs with no download.
 *
 * Weight scales. ParaLab compares parallel plans token for token, so a random
 * model must keep activations O(1) through every layer and give logits whose
 * top two are well apart (a flat softmax turns fp32 reordering noise into
 * different greedy tokens):
 *   - linear weights [out, in] (q/k/v/o, gate/up/down, experts, routers):
 *     N(0, 1/in) — "fan-in" scaling, each output keeps the input's variance;
 *   - token embeddings: N(0, 1), the same scale RMSNorm produces;
 *   - RMSNorm weights (and q/k norms): 1 + N(0, 0.1²): near identity, but
 *     each layer's distinct, so loading the wrong norm shows up in `verify`;
 *   - biases: N(0, 0.1²);
 *   - lm_head: N(0, (4/√hidden)²): after the final RMSNorm logits have a
 *     standard deviation of about 4, so the softmax is peaked and the gap
 *     between the best and the second-best logit is typically ~1 (well above
 *     fp32 parallel noise) instead of ~0.25.
 * Normals are Irwin–Hall sums of four 16-bit uniforms from xoshiro128**
 * (integer-only, so bit-identical on every platform; tails bounded at ±3.46σ,
 * harmless for random weights). Each tensor has its own stream seeded from
 * (preset seed, tensor name), so values do not depend on write order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildTokenizerFiles } from './bpe';
import { toHfConfig } from './hf-config';
import { ModelError, errorText } from './errors';
import { paralabCacheDir } from './paths';
import { PRESET_VERSION, presetSpec, type PresetId } from './presets';
import { writeSafetensors, type TensorToWrite } from './safetensors-write';
import type { WritableDtype } from './safetensors';
import type { ModelConfig } from './types';
import { expectedTensors } from './weights';

export const LM_HEAD_GAIN = 4;
export const NORM_NOISE_STD = 0.1;
export const BIAS_STD = 0.1;
/** Marker written last into a preset folder: a folder without it is not a finished preset. */
export const PRESET_MARKER = 'paralab-preset.json';

export type ProgressFn = (done: number, total: number, message: string) => void;

// ---------------------------------------------------------------------------
// deterministic random numbers

/** FNV-1a of a string, folded with a seed through splitmix32. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Standard deviation of a sum of four independent uniform 16-bit integers. */
const IRWIN_HALL_SD = Math.sqrt((4 * (65536 * 65536 - 1)) / 12);
const IRWIN_HALL_MEAN = 2 * 65535;

/** Fills `out` with approximately normal N(mean, std²) values from the stream `seed`. */
export function fillNormal(out: Float32Array, seed: number, mean: number, std: number): void {
  const sm = { s: seed | 0 };
  let s0 = splitmix32(sm), s1 = splitmix32(sm), s2 = splitmix32(sm), s3 = splitmix32(sm);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  const scale = std / IRWIN_HALL_SD;
  for (let i = 0; i < out.length; i++) {
    // two xoshiro128** outputs, inlined (this loop writes ~155M values for the small preset)
    let r = Math.imul(s1, 5);
    const a = Math.imul((r << 7) | (r >>> 25), 9);
    let t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    r = Math.imul(s1, 5);
    const b = Math.imul((r << 7) | (r >>> 25), 9);
    t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    const sum = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
    out[i] = mean + (sum - IRWIN_HALL_MEAN) * scale;
  }
}

/** Mean and standard deviation of a tensor's init (see the header comment). */
export function initScale(name: string, shape: number[], c: ModelConfig): { mean: number; std: number } {
  if (name.endsWith('embed_tokens.weight')) return { mean: 0, std: 1 };
  if (name === 'lm_head.weight') return { mean: 0, std: LM_HEAD_GAIN / Math.sqrt(c.hidden) };
  if (name.endsWith('norm.weight')) return { mean: 1, std: NORM_NOISE_STD };
  if (name.endsWith('.bias')) return { mean: 0, std: BIAS_STD };
  return { mean: 0, std: 1 / Math.sqrt(shape[1]) };
}

/** Every tensor of `config`, each generated only when the writer reaches it. */
export function syntheticTensors(config: ModelConfig, seed: number, dtype: WritableDtype = 'F32'): TensorToWrite[] {
  return [...expectedTensors(config)].map(([name, shape]) => ({
    name,
    dtype,
    shape,
    data: () => {
      const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const { mean, std } = initScale(name, shape, config);
      fillNormal(out, streamSeed(seed, name), mean, std);
      return out;
    },
  }));
}

export function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

export interface SyntheticModelOptions {
  seed: number;
  /** weight dtype on disk (default from config.dtype) */
  dtype?: WritableDtype;
  /** extra safetensors metadata */
  metadata?: Record<string, string>;
  onProgress?: ProgressFn;
}

const WRITABLE: Record<ModelConfig['dtype'], WritableDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

/**
 * Writes a complete synthetic HF model folder into `dir` (which must exist).
 * Not atomic by itself: `ensurePreset` calls it on a temporary folder.
 */
export async function writeSyntheticModel(dir: string, config: ModelConfig, opts: SyntheticModelOptions): Promise<void> {
  const tensors = syntheticTensors(config, opts.seed, opts.dtype ?? WRITABLE[config.dtype]);
  const total = tensors.length + 1;
  const tok = buildTokenizerFiles(config.vocabSize, { maxLength: config.maxPositions });
  writeJson(path.join(dir, 'tokenizer.json'), tok.tokenizer);
  writeJson(path.join(dir, 'tokenizer_config.json'), tok.tokenizerConfig);
  writeJson(path.join(dir, 'config.json'), toHfConfig(config));
  writeJson(path.join(dir, 'generation_config.json'), {
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds,
    do_sample: false,
  });
  opts.onProgress?.(1, total, 'wrote config and tokenizer');
  const metadata = { format: 'pt', paralab_seed: String(opts.seed), ...opts.metadata };
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, metadata, {
    onTensor: (i, n, name) => opts.onProgress?.(i + 2, n + 1, `wrote ${name}`),
  });
}

// ---------------------------------------------------------------------------
// the preset cache

interface PresetMarker {
  format: 'paralab.preset/1';
  id: string;
  version: number;
  seed: number;
  /** file name → size in bytes, checked when the folder is reused */
  files: Record<string, number>;
}

/** The folder a preset lives in once written. */
export function presetDir(id: PresetId, cacheDir = paralabCacheDir()): string {
  return path.join(cacheDir, 'presets', `${id}-v${PRESET_VERSION}`);
}

/** True when `dir` holds a finished preset `id` (marker present, every file there at its recorded size). */
export function isPresetComplete(dir: string, id: string): boolean {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dir, PRESET_MARKER), 'utf8')) as PresetMarker;
    if (marker.format !== 'paralab.preset/1' || marker.id !== id || marker.version !== PRESET_VERSION) return false;
    return Object.entries(marker.files).every(([f, size]) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size === size);
  } catch {
    return false;
  }
}

const STALE_TEMP_MS = 60 * 60 * 1000;

/** Removes temporary folders left by writers that crashed over an hour ago. */
export function removeStaleTemps(parent: string): void {
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith('.tmp-') && !name.startsWith('.stale-')) continue;
    const p = path.join(parent, name);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs > STALE_TEMP_MS) fs.rmSync(p, { recursive: true, force: true });
  }
}

/** Moves `tmp` to `final`; if another writer got there first with a complete folder, keeps theirs. */
export function publish(tmp: string, final: string, isComplete: (dir: string) => boolean): void {
  if (fs.existsSync(final) && !isComplete(final)) {
    // A broken folder under the real name (edited by hand, or copied half): set it aside.
    const aside = path.join(path.dirname(final), `.stale-${path.basename(final)}-${process.pid}-${Date.now()}`);
    fs.renameSync(final, aside);
    fs.rmSync(aside, { recursive: true, force: true });
  }
  try {
    fs.renameSync(tmp, final);
  } catch (e) {
    if (isComplete(final)) {
      fs.rmSync(tmp, { recursive: true, force: true });
      return;
    }
    throw e;
  }
}

async function buildPreset(id: PresetId, final: string, onProgress?: ProgressFn): Promise<string> {
  const spec = presetSpec(id);
  const parent = path.dirname(final);
  fs.mkdirSync(parent, { recursive: true });
  removeStaleTemps(parent);
  const tmp = fs.mkdtempSync(path.join(parent, `.tmp-${path.basename(final)}-${process.pid}-`));
  try {
    await writeSyntheticModel(tmp, spec.config, { seed: spec.seed, metadata: { paralab_preset: id }, onProgress });
    const files = Object.fromEntries(fs.readdirSync(tmp).sort().map((f) => [f, fs.statSync(path.join(tmp, f)).size]));
    const marker: PresetMarker = { format: 'paralab.preset/1', id, version: PRESET_VERSION, seed: spec.seed, files };
    writeJson(path.join(tmp, PRESET_MARKER), marker);
    publish(tmp, final, (d) => isPresetComplete(d, id));
    return final;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof ModelError) throw e;
    throw new ModelError('io', `${final}: could not write preset ${id} (${errorText(e)}); check free disk space and that PARALAB_CACHE is writable`, { cause: e });
  }
}

const inflight = new Map<string, Promise<string>>();

export interface EnsurePresetOptions {
  /** defaults to PARALAB_CACHE or the platform cache folder */
  cacheDir?: string;
  onProgress?: ProgressFn;
}

/**
 * The folder of preset `id`, writing it first if it is not in the cache yet.
 * Written once, atomically: files are built in a temporary sibling folder,
 * the marker is written last and the folder is renamed into place, so a
 * crash or a concurrent writer never leaves a half folder that looks done.
 */
export async function ensurePreset(id: string, opts: EnsurePresetOptions = {}): Promise<string> {
  const spec = presetSpec(id); // throws 'unknown-preset'
  const final = presetDir(spec.id, opts.cacheDir);
  if (isPresetComplete(final, spec.id)) return final;
  let job = inflight.get(final);
  if (!job) {
    job = buildPreset(spec.id, final, opts.onProgress).finally(() => inflight.delete(final));
    inflight.set(final, job);
  }
  return job;
}
