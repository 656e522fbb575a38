/**
 * The weights of one model folder, across one or many safetensors files.
 *
 * `WeightStore` opens `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json` (`weight_map: {tensor: file}`), or, for
 * folders without either, every `*.safetensors` in the folder. It knows which
 * file holds each tensor and reads tensors (or row / column slices of them,
 * for tensor parallelism) as float32 straight from disk.
 *
 * `expectedTensors` spells out the Hugging Face tensor names and shapes each
 * family needs; `validateWeights` checks a store against a config before a
 * run starts, so a wrong or partial download fails with the tensor named.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError, errorText, oneLine, show } from './errors';
import { SafetensorsFile, type SafeDtype, type TensorSlice } from './safetensors';
import type { ModelConfig } from './types';

const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';

/** The read side of a model's weights, all a rank's shard loader needs (WeightStore implements it; tests pass tensors in memory). */
export interface WeightReader {
  has(name: string): boolean;
  readF32(name: string, slice?: TensorSlice): Float32Array;
}

export class WeightStore implements WeightReader {
  readonly dir: string;
  private readonly files: SafetensorsFile[];
  private readonly where = new Map<string, SafetensorsFile>();

  private constructor(dir: string, files: SafetensorsFile[], weightMap: Map<string, string> | null) {
    this.dir = dir;
    this.files = files;
    const byBase = new Map(files.map((f) => [path.basename(f.path), f]));
    for (const f of files) {
      for (const name of f.names()) {
        const prev = this.where.get(name);
        if (prev) {
          throw new ModelError('safetensors-corrupt', `${f.path}: tensor '${oneLine(name, 100)}' is also in ${prev.path}; a model folder must hold each tensor once (remove the stray file)`);
        }
        this.where.set(name, f);
      }
    }
    if (weightMap) this.checkIndex(weightMap, byBase);
  }

  /** Opens every weight file of a model folder; throws ModelError naming the file that is missing or broken. */
  static open(dir: string): WeightStore {
    const stat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) throw new ModelError('weights-missing', `${dir}: folder not found; pass a model folder with *.safetensors weights`);
    const { files, weightMap } = weightFiles(dir);
    const opened: SafetensorsFile[] = [];
    try {
      for (const f of files) opened.push(SafetensorsFile.open(path.join(dir, f)));
      return new WeightStore(dir, opened, weightMap);
    } catch (e) {
      for (const f of opened) f.close();
      throw e;
    }
  }

  /** Absolute paths of the weight files. */
  get paths(): string[] {
    return this.files.map((f) => f.path);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** The file that holds `name`. */
  fileOf(name: string): string {
    return this.file(name).path;
  }

  shape(name: string): number[] {
    return this.file(name).shape(name);
  }

  dtype(name: string): SafeDtype {
    return this.file(name).info(name).dtype;
  }

  /** A tensor, or a slice of it (`rows` over dim 0, `cols` over dim 1), as float32. */
  readF32(name: string, slice?: TensorSlice): Float32Array {
    return this.file(name).readF32(name, slice);
  }

  /** Bytes of tensor data on disk, all files together. */
  get totalBytes(): number {
    let n = 0;
    for (const f of this.files) for (const name of f.names()) {
      const t = f.info(name);
      n += t.end - t.begin;
    }
    return n;
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new ModelError('tensor-missing', `${this.dir}: no weight file holds tensor '${oneLine(name, 100)}'; the weights do not match this model's config`);
    return f;
  }

  /** Every tensor the index promises must be in the shard it names. */
  private checkIndex(weightMap: Map<string, string>, byBase: Map<string, SafetensorsFile>): void {
    for (const [name, shard] of weightMap) {
      const f = byBase.get(shard);
      if (f && !f.has(name)) {
        throw new ModelError('tensor-missing', `${path.join(this.dir, INDEX_FILE)}: says tensor '${oneLine(name, 100)}' is in ${oneLine(shard, 100)}, but that file does not have it; re-download the model`);
      }
    }
  }
}

/** Which files to open: from the index, the single file, or every *.safetensors. */
function weightFiles(dir: string): { files: string[]; weightMap: Map<string, string> | null } {
  const indexPath = path.join(dir, INDEX_FILE);
  if (fs.existsSync(indexPath)) {
    const weightMap = readIndex(indexPath);
    const files = [...new Set(weightMap.values())].sort();
    for (const f of files) {
      if (!fs.existsSync(path.join(dir, f))) {
        throw new ModelError('weights-missing', `${oneLine(path.join(dir, f), 300)}: not found, but ${INDEX_FILE} lists it; the download is incomplete, fetch every shard`);
      }
    }
    return { files, weightMap };
  }
  if (fs.existsSync(path.join(dir, SINGLE_FILE))) return { files: [SINGLE_FILE], weightMap: null };
  const all = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  if (all.length > 0) return { files: all, weightMap: null };
  const bins = fs.readdirSync(dir).filter((f) => f.endsWith('.bin') || f.endsWith('.pth') || f.endsWith('.gguf'));
  const hint = bins.length > 0
    ? ` (found ${oneLine(bins.slice(0, 3).join(', '), 200)}: ParaLab reads only safetensors; convert the checkpoint or download the safetensors version)`
    : '';
  throw new ModelError('weights-missing', `${dir}: no model.safetensors, ${INDEX_FILE} or other *.safetensors file${hint}`);
}

function readIndex(indexPath: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new ModelError('safetensors-corrupt', `${indexPath}: cannot be read as JSON (${errorText(e)}); re-download it`, { cause: e });
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new ModelError('safetensors-corrupt', `${indexPath}: has no "weight_map" object; re-download it`);
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    // a bare file name of this folder: no path separators, not '' / '.' / '..' (the folder itself or its parent), no NUL
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || /[/\\\0]/.test(file)) {
      throw new ModelError('safetensors-corrupt', `${indexPath}: weight_map entry '${oneLine(name, 100)}' names ${show(file, 100)}, not a file in this folder; re-download it`);
    }
    out.set(name, file);
  }
  return out;
}

// ---------------------------------------------------------------------------
// what a config needs

/** Hugging Face tensor names and shapes (`[out, in]` for linear layers) a config needs, in checkpoint order. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  return new Map(expectedTensorList(c));
}

type Expected = Generator<[name: string, shape: number[]]>;

/**
 * expectedTensors one at a time: validateWeights stops at the first tensor
 * the files lack, so a config.json claiming 10^9 layers or experts is refused
 * without building a list of that size first.
 */
function* expectedTensorList(c: ModelConfig): Expected {
  const H = c.hidden;
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  yield ['model.embed_tokens.weight', [c.vocabSize, H]];
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}`;
    yield [`${p}.input_layernorm.weight`, [H]];
    yield* attention(`${p}.self_attn`, c, q, kv);
    yield [`${p}.post_attention_layernorm.weight`, [H]];
    yield* mlp(p, c);
  }
  yield ['model.norm.weight', [H]];
  if (!c.tieEmbeddings) yield ['lm_head.weight', [c.vocabSize, H]];
}

function* attention(p: string, c: ModelConfig, q: number, kv: number): Expected {
  const H = c.hidden;
  yield [`${p}.q_proj.weight`, [q, H]];
  yield [`${p}.k_proj.weight`, [kv, H]];
  yield [`${p}.v_proj.weight`, [kv, H]];
  yield [`${p}.o_proj.weight`, [H, q]];
  if (c.qkvBias) {
    yield [`${p}.q_proj.bias`, [q]];
    yield [`${p}.k_proj.bias`, [kv]];
    yield [`${p}.v_proj.bias`, [kv]];
  }
  if (c.qkNorm) {
    const whole = c.qkNormScope === 'projection'; // OLMoE: one norm over the whole projection
    yield [`${p}.q_norm.weight`, [whole ? q : c.headDim]];
    yield [`${p}.k_norm.weight`, [whole ? kv : c.headDim]];
  }
}

/** SwiGLU weights `gate`/`up` [f, H], `down` [H, f] under the given names. */
function* swiglu(p: string, H: number, f: number, [gate, up, down]: [string, string, string]): Expected {
  yield [`${p}.${gate}.weight`, [f, H]];
  yield [`${p}.${up}.weight`, [f, H]];
  yield [`${p}.${down}.weight`, [H, f]];
}

function* mlp(p: string, c: ModelConfig): Expected {
  const H = c.hidden;
  const moe = c.moe;
  if (!moe) {
    yield* swiglu(`${p}.mlp`, H, c.ffn, ['gate_proj', 'up_proj', 'down_proj']);
    return;
  }
  if (c.family === 'mixtral') {
    yield [`${p}.block_sparse_moe.gate.weight`, [moe.experts, H]];
    for (let e = 0; e < moe.experts; e++) {
      yield* swiglu(`${p}.block_sparse_moe.experts.${e}`, H, moe.expertFfn, ['w1', 'w3', 'w2']);
    }
    return;
  }
  // Qwen2-MoE / Qwen3-MoE / OLMoE
  yield [`${p}.mlp.gate.weight`, [moe.experts, H]];
  for (let e = 0; e < moe.experts; e++) {
    yield* swiglu(`${p}.mlp.experts.${e}`, H, moe.expertFfn, ['gate_proj', 'up_proj', 'down_proj']);
  }
  if (moe.sharedExpertFfn > 0) {
    yield* swiglu(`${p}.mlp.shared_expert`, H, moe.sharedExpertFfn, ['gate_proj', 'up_proj', 'down_proj']);
    yield [`${p}.mlp.shared_expert_gate.weight`, [1, H]];
  }
}

const FLOAT_DTYPES: ReadonlySet<SafeDtype> = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Checks that every tensor `config` needs is present, float, and of the right
 * shape. Throws a ModelError for the first problem, naming the tensor, its
 * file and both shapes. Extra tensors (e.g. rotary inv_freq buffers) are fine.
 */
export function validateWeights(store: WeightStore, config: ModelConfig): void {
  for (const [name, want] of expectedTensorList(config)) {
    if (!store.has(name)) {
      throw new ModelError('tensor-missing', `${store.dir}: tensor '${name}' (shape [${want.join(', ')}]) is missing from the weight files; the weights do not match config.json (${config.hfArchitecture}, ${config.layers} layers)`);
    }
    const got = store.shape(name);
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new ModelError('shape-mismatch', `${store.fileOf(name)}: tensor '${name}' has shape [${got.join(', ')}] but config.json implies [${want.join(', ')}]; the weights do not match the config`);
    }
    const dtype = store.dtype(name);
    if (!FLOAT_DTYPES.has(dtype)) {
      throw new ModelError('unsupported-dtype', `${store.fileOf(name)}: tensor '${name}' is ${dtype} (quantised?); ParaLab needs F32, F16 or BF16 weights`);
    }
  }
}
