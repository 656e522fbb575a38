/**
 * An independent oracle for llama2.c checkpoints: the forward pass of
 * llama2.c's run.c written out in plain TypeScript over the .bin file itself
 * (its own layout: interleaved-pair RoPE on the unpermuted wq/wk, float64
 * accumulation). It shares no code with ParaLab's importer, graphs or
 * reference model, so agreeing with it checks the import's permutation and
 * the whole engine on real trained weights.
 */
import fs from 'node:fs';

interface Weights {
  dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; seqLen: number;
  emb: Float32Array; rmsAtt: Float32Array; wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array;
  rmsFfn: Float32Array; w1: Float32Array; w2: Float32Array; w3: Float32Array; rmsFinal: Float32Array; wcls: Float32Array;
}

export function readRunC(file: string): Weights {
  const buf = fs.readFileSync(file);
  const h = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i));
  const [dim, hidden, layers, heads, kvHeads, vocabSigned, seqLen] = h;
  const vocab = Math.abs(vocabSigned);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  const kvDim = (dim * kvHeads) / heads;
  let at = 0;
  const take = (n: number) => all.subarray(at, (at += n));
  const emb = take(vocab * dim);
  const w = {
    dim, hidden, layers, heads, kvHeads, vocab, seqLen, emb,
    rmsAtt: take(layers * dim), wq: take(layers * dim * dim), wk: take(layers * kvDim * dim), wv: take(layers * kvDim * dim), wo: take(layers * dim * dim),
    rmsFfn: take(layers * dim), w1: take(layers * hidden * dim), w2: take(layers * dim * hidden), w3: take(layers * hidden * dim), rmsFinal: take(dim),
  };
  take(seqLen * (dim / heads)); // freq_cis_real + freq_cis_imag
  return { ...w, wcls: vocabSigned > 0 ? emb : take(vocab * dim) };
}

function rmsnorm(x: Float64Array, w: Float32Array): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + 1e-5);
  return x.map((v, i) => v * s * w[i]);
}

/** out[r] = Σ_c W[r, c] x[c] for W [rows, x.length] starting at `off` */
function matmul(W: Float32Array, off: number, x: Float64Array, rows: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = off + r * n;
    for (let c = 0; c < n; c++) s += W[base + c] * x[c];
    out[r] = s;
  }
  return out;
}

/** Greedy decoding exactly as run.c (temperature 0): every step's logits and the chosen tokens. */
export function runCGreedy(w: Weights, prompt: number[], steps: number): { tokens: number[]; logits: Float32Array[] } {
  const { dim, hidden, layers, heads, kvHeads } = w;
  const hs = dim / heads;
  const kvDim = kvHeads * hs;
  const kvMul = heads / kvHeads;
  const kCache = Array.from({ length: layers }, () => [] as Float64Array[]);
  const vCache = Array.from({ length: layers }, () => [] as Float64Array[]);
  const tokens: number[] = [];
  const logitsOut: Float32Array[] = [];
  const seq = [...prompt];
  for (let pos = 0; pos < prompt.length + steps - 1; pos++) {
    const token = seq[pos];
    let x = Float64Array.from(w.emb.subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < layers; l++) {
      const xb = rmsnorm(x, w.rmsAtt.subarray(l * dim, (l + 1) * dim));
      const q = matmul(w.wq, l * dim * dim, xb, dim);
      const k = matmul(w.wk, l * kvDim * dim, xb, kvDim);
      const v = matmul(w.wv, l * kvDim * dim, xb, kvDim);
      for (let i = 0; i < dim; i += 2) {
        const freq = 1 / Math.pow(10000, (i % hs) / hs);
        const c = Math.cos(pos * freq);
        const s = Math.sin(pos * freq);
        for (const vec of i < kvDim ? [q, k] : [q]) {
          const [a, b] = [vec[i], vec[i + 1]];
          vec[i] = a * c - b * s;
          vec[i + 1] = a * s + b * c;
        }
      }
      kCache[l].push(k);
      vCache[l].push(v);
      const att = new Float64Array(dim);
      for (let h = 0; h < heads; h++) {
        const kh = Math.floor(h / kvMul) * hs;
        const scores = kCache[l].map((kt) => {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q[h * hs + i] * kt[kh + i];
          return d / Math.sqrt(hs);
        });
        const m = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - m));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((p, t) => {
          for (let i = 0; i < hs; i++) att[h * hs + i] += (p / z) * vCache[l][t][kh + i];
        });
      }
      const o = matmul(w.wo, l * dim * dim, att, dim);
      x = x.map((xi, i) => xi + o[i]);
      const xf = rmsnorm(x, w.rmsFfn.subarray(l * dim, (l + 1) * dim));
      const g = matmul(w.w1, l * hidden * dim, xf, hidden);
      const u = matmul(w.w3, l * hidden * dim, xf, hidden);
      const act = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
      const d = matmul(w.w2, l * dim * hidden, act, dim);
      x = x.map((xi, i) => xi + d[i]);
    }
    if (pos < prompt.length - 1) continue;
    const logits = matmul(w.wcls, 0, rmsnorm(x, w.rmsFinal), w.vocab);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    tokens.push(best);
    logitsOut.push(Float32Array.from(logits));
    seq.push(best);
  }
  return { tokens, logits: logitsOut };
}
