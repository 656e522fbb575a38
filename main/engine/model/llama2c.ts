/**
 * llama2.c checkpoints (Karpathy's "legacy" version-0 export, e.g. the
 * tinyllamas stories*.bin) as ParaLab model folders.
 *
 * The file is 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size — negative when an untied classifier follows —,
 * seq_len) and then float32 tensors, [out, in] row-major:
 *   token embedding [V, D], attention RMSNorm [L, D], wq [L, D, D],
 *   wk [L, KV, D], wv [L, KV, D], wo [L, D, D], FFN RMSNorm [L, D],
 *   w1 [L, F, D], w2 [L, D, F], w3 [L, F, D], final RMSNorm [D],
 *   two legacy RoPE tables [seq_len, head/2] (skipped), classifier [V, D] if untied.
 *
 * llama2.c rotates interleaved pairs (x0,x1),(x2,x3)… while Hugging Face Llama
 * rotates halves (x_i, x_{i+head/2}); the import permutes the rows of wq and
 * wk within each head so that the HF graph computes exactly the same thing
 * (the permutation of Meta's → HF's conversion script).
 *
 * The checkpoint carries no tokenizer. The imported folder gets a placeholder
 * one with SentencePiece's layout for byte-fallback vocabularies (0 <unk>,
 * 1 <s>, 2 </s>, 3..258 the bytes); the learned pieces, which are not in the
 * file, show as ⟨id⟩. Token ids are the real thing; text is only as good as that.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ModelError, errorText } from './errors';
import { paralabCacheDir } from './paths';
import { writeSafetensors, type TensorToWrite } from './safetensors-write';
import { publish, removeStaleTemps, writeJson } from './synth';
import { toHfConfig } from './hf-config';
import type { ModelConfig } from './types';

const HEADER_INTS = 7;
const HEADER_BYTES = HEADER_INTS * 4;
/** llama2.c's version ≥ 1 exports start with this magic ("ak42") */
const V1_MAGIC = 0x616b3432;
export const IMPORT_MARKER = 'paralab-llama2c.json';
const MARKER_FORMAT = 'paralab.llama2c/1';

/** True when `file` is a file whose name ends in .bin (the only place a llama2.c checkpoint is looked for). */
export function isLlama2cPath(file: string): boolean {
  return file.toLowerCase().endsWith('.bin') && (fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false);
}

interface Layout {
  config: ModelConfig;
  /** float32 offsets (in floats, after the header) of each tensor group */
  offsets: Record<'emb' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3' | 'rmsFinal' | 'wcls', number>;
  bytes: number;
}

/** Reads and checks the header against the file size; every failure names the file and what it found. */
export function readLlama2cHeader(file: string): Layout {
  const fail = (why: string) => new ModelError('config-invalid', `${file}: ${why}`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new ModelError('io', `${file}: cannot be read (${errorText(e)})`, { cause: e });
  }
  const head = Buffer.alloc(HEADER_BYTES);
  let size: number;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw fail('is a folder or device, not a llama2.c checkpoint file; pass the .bin file itself');
    size = st.size;
    if (size < HEADER_BYTES) throw fail(`${size} bytes is too short for a llama2.c checkpoint (the header alone is ${HEADER_BYTES})`);
    let got: number;
    try {
      got = fs.readSync(fd, head, 0, HEADER_BYTES, 0);
    } catch (e) {
      throw new ModelError('io', `${file}: cannot be read (${errorText(e)})`, { cause: e });
    }
    if (got < HEADER_BYTES) throw fail(`ended after ${got} of the ${HEADER_BYTES} header bytes while it was being read; the file is truncated`);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32LE(0) === V1_MAGIC) {
    throw fail(`a llama2.c version-${head.readInt32LE(4)} export; only the legacy (version 0) format is read — re-export with \`export.py --version 0\`, or convert to a Hugging Face folder with \`export.py --version -1\``);
  }
  const [dim, ffn, layers, heads, kvHeads, vocabSigned, seqLen] = Array.from({ length: HEADER_INTS }, (_, i) => head.readInt32LE(4 * i));
  const vocab = Math.abs(vocabSigned);
  const sane = (n: number, max: number) => Number.isInteger(n) && n > 0 && n <= max;
  if (!sane(dim, 1 << 16) || !sane(ffn, 1 << 18) || !sane(layers, 1024) || !sane(heads, 1024) || !sane(kvHeads, 1024) || !sane(vocab, 1 << 21) || !sane(seqLen, 1 << 20)) {
    throw fail(`the header (dim ${dim}, hidden ${ffn}, layers ${layers}, heads ${heads}, kv heads ${kvHeads}, vocab ${vocabSigned}, seq_len ${seqLen}) is not a llama2.c checkpoint's`);
  }
  if (dim % heads !== 0 || heads % kvHeads !== 0 || (dim / heads) % 2 !== 0) {
    throw fail(`dim ${dim}, ${heads} heads and ${kvHeads} kv heads do not make whole, even-sized heads shared evenly by the kv heads`);
  }
  const headDim = dim / heads;
  const kv = kvHeads * headDim;
  const sizes = {
    emb: vocab * dim, rmsAtt: layers * dim, wq: layers * dim * dim, wk: layers * kv * dim, wv: layers * kv * dim, wo: layers * dim * dim,
    rmsFfn: layers * dim, w1: layers * ffn * dim, w2: layers * dim * ffn, w3: layers * ffn * dim, rmsFinal: dim,
    rope: seqLen * headDim, // the two legacy tables, [seq_len, head/2] each
    wcls: vocabSigned < 0 ? vocab * dim : 0,
  };
  const offsets = {} as Layout['offsets'];
  let at = 0;
  for (const [name, n] of Object.entries(sizes)) {
    if (name !== 'rope') offsets[name as keyof Layout['offsets']] = at;
    at += n;
  }
  const bytes = HEADER_BYTES + 4 * at;
  if (bytes !== size) {
    throw fail(`is ${size} bytes, but a llama2.c legacy checkpoint with this header (dim ${dim}, ${layers} layers, vocab ${vocab}${vocabSigned < 0 ? ', untied classifier' : ''}) is ${bytes} bytes; the file is truncated or in another format`);
  }
  const config: ModelConfig = {
    family: 'llama',
    hfArchitecture: 'LlamaForCausalLM',
    vocabSize: vocab,
    hidden: dim,
    layers,
    heads,
    kvHeads,
    headDim,
    ffn,
    rmsEps: 1e-5, // llama2.c's rmsnorm
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositions: seqLen,
    tieEmbeddings: vocabSigned > 0,
    qkvBias: false,
    qkNorm: false,
    moe: null,
    dtype: 'float32',
    bosTokenId: 1, // SentencePiece, as llama2.c's tokenizers
    eosTokenIds: [2],
  };
  return { config, offsets, bytes };
}

/**
 * Rows of a [n·head, in] projection from llama2.c's interleaved-pair layout to
 * HF's rotate-half layout: within each head, row 2i+j moves to j·head/2 + i.
 */
export function interleavedToHalves(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * cols;
        out.set(w.subarray(from, from + cols), (h * headDim + j * half + i) * cols);
      }
    }
  }
  return out;
}

/** `n` floats starting `at` floats after the header (a positioned read: files over 2 GiB work). */
function floatReader(fd: number): (at: number, n: number) => Float32Array {
  return (at, n) => {
    const out = new Float32Array(n);
    const bytes = new Uint8Array(out.buffer);
    for (let done = 0; done < bytes.length; ) {
      const got = fs.readSync(fd, bytes, done, bytes.length - done, HEADER_BYTES + 4 * at + done);
      if (got === 0) throw new ModelError('config-invalid', 'the checkpoint ended early while it was being read');
      done += got;
    }
    return out;
  };
}

/** The checkpoint's tensors under Hugging Face Llama names (q/k rows permuted), each read when the writer reaches it. */
export function llama2cTensors(layout: Layout, slice: (at: number, n: number) => Float32Array): TensorToWrite[] {
  const c = layout.config;
  const { hidden: D, ffn: F, layers: L, kvHeads, heads, headDim } = c;
  const KV = kvHeads * headDim;
  const o = layout.offsets;
  const t = (name: string, shape: number[], make: () => Float32Array): TensorToWrite => ({ name, dtype: 'F32', shape, data: make });
  const out: TensorToWrite[] = [t('model.embed_tokens.weight', [c.vocabSize, D], () => slice(o.emb, c.vocabSize * D))];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    out.push(
      t(`${p}.input_layernorm.weight`, [D], () => slice(o.rmsAtt + l * D, D)),
      t(`${p}.self_attn.q_proj.weight`, [D, D], () => interleavedToHalves(slice(o.wq + l * D * D, D * D), heads, headDim, D)),
      t(`${p}.self_attn.k_proj.weight`, [KV, D], () => interleavedToHalves(slice(o.wk + l * KV * D, KV * D), kvHeads, headDim, D)),
      t(`${p}.self_attn.v_proj.weight`, [KV, D], () => slice(o.wv + l * KV * D, KV * D)),
      t(`${p}.self_attn.o_proj.weight`, [D, D], () => slice(o.wo + l * D * D, D * D)),
      t(`${p}.post_attention_layernorm.weight`, [D], () => slice(o.rmsFfn + l * D, D)),
      t(`${p}.mlp.gate_proj.weight`, [F, D], () => slice(o.w1 + l * F * D, F * D)),
      t(`${p}.mlp.down_proj.weight`, [D, F], () => slice(o.w2 + l * D * F, D * F)),
      t(`${p}.mlp.up_proj.weight`, [F, D], () => slice(o.w3 + l * F * D, F * D)),
    );
  }
  out.push(t('model.norm.weight', [D], () => slice(o.rmsFinal, D)));
  if (!c.tieEmbeddings) out.push(t('lm_head.weight', [c.vocabSize, D], () => slice(o.wcls, c.vocabSize * D)));
  return out;
}

/** A tokenizer.json for ids only: SentencePiece's special and byte pieces, ⟨id⟩ for the pieces the checkpoint does not carry. */
export function placeholderTokenizer(vocab: number): { tokenizer: unknown; tokenizerConfig: unknown } {
  const names = ['<unk>', '<s>', '</s>'];
  const pieces: Record<string, number> = {};
  for (let id = 0; id < vocab; id++) {
    const b = id - names.length;
    pieces[id < names.length ? names[id] : b < 256 ? `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>` : `⟨${id}⟩`] = id;
  }
  const special = names.slice(0, Math.min(vocab, names.length)).map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    tokenizer: {
      version: '1.0', truncation: null, padding: null, added_tokens: special, normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' }, post_processor: null,
      decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] },
      model: { type: 'WordLevel', vocab: pieces, unk_token: '<unk>' },
    },
    tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: false, paralab_note: 'placeholder: the llama2.c checkpoint carries no tokenizer' },
  };
}

function fileDigest(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

interface Marker {
  format: typeof MARKER_FORMAT;
  source: string;
  sha256: string;
  files: Record<string, number>;
}

function isImportComplete(dir: string, sha: string): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, IMPORT_MARKER), 'utf8')) as Marker;
    return m.format === MARKER_FORMAT && m.sha256 === sha && Object.entries(m.files).every(([f, n]) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size === n);
  } catch {
    return false;
  }
}

/** file@size@mtime → its imported folder: spec checks and engine starts resolve the same file often, and hashing it each time would cost a full read */
const imported = new Map<string, string>();
const inflight = new Map<string, Promise<string>>();

/**
 * The model folder for llama2.c checkpoint `file`: written once into
 * `<cache>/imported/<name>-<sha256[:12]>/` (config.json, model.safetensors,
 * a placeholder tokenizer), then reused while the file's contents are the same.
 * Written in a temporary sibling and renamed into place, like the presets.
 */
export async function importLlama2c(file: string, opts: { cacheDir?: string } = {}): Promise<string> {
  const src = path.resolve(file);
  const layout = readLlama2cHeader(src);
  const st = fs.statSync(src);
  const parent = path.join(opts.cacheDir ?? paralabCacheDir(), 'imported');
  const key = `${parent}\n${src}\n${st.size}\n${st.mtimeMs}`;
  const known = imported.get(key);
  if (known && fs.existsSync(path.join(known, IMPORT_MARKER))) return known;
  let job = inflight.get(key);
  if (!job) {
    job = writeImport(src, layout, parent)
      .then((dir) => (imported.set(key, dir), dir))
      .finally(() => inflight.delete(key));
    inflight.set(key, job);
  }
  return job;
}

async function writeImport(src: string, layout: Layout, parent: string): Promise<string> {
  const sha = fileDigest(src);
  const final = path.join(parent, `${path.basename(src, path.extname(src))}-${sha.slice(0, 12)}`);
  const complete = (dir: string) => isImportComplete(dir, sha);
  if (complete(final)) return final;
  fs.mkdirSync(parent, { recursive: true });
  removeStaleTemps(parent);
  const tmp = fs.mkdtempSync(path.join(parent, `.tmp-${path.basename(final)}-${process.pid}-`));
  const fd = fs.openSync(src, 'r');
  try {
    if (fs.fstatSync(fd).size !== layout.bytes) throw new ModelError('config-invalid', `${src}: changed while it was being read`);
    const tok = placeholderTokenizer(layout.config.vocabSize);
    writeJson(path.join(tmp, 'config.json'), toHfConfig(layout.config));
    writeJson(path.join(tmp, 'generation_config.json'), { bos_token_id: 1, eos_token_id: 2, do_sample: false });
    writeJson(path.join(tmp, 'tokenizer.json'), tok.tokenizer);
    writeJson(path.join(tmp, 'tokenizer_config.json'), tok.tokenizerConfig);
    await writeSafetensors(path.join(tmp, 'model.safetensors'), llama2cTensors(layout, floatReader(fd)), { format: 'pt', paralab_source: `llama2.c legacy: ${path.basename(src)}` });
    const files = Object.fromEntries(fs.readdirSync(tmp).sort().map((f) => [f, fs.statSync(path.join(tmp, f)).size]));
    writeJson(path.join(tmp, IMPORT_MARKER), { format: MARKER_FORMAT, source: src, sha256: sha, files } satisfies Marker);
    publish(tmp, final, complete);
    return final;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof ModelError) throw e;
    throw new ModelError('io', `${final}: could not write the imported model (${errorText(e)}); check free disk space and that PARALAB_CACHE is writable`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}
