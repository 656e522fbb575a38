/**
 * In-memory random weights for a ModelConfig, addressed by Hugging Face
 * names, with the same row/column slicing as the safetensors reader. Lets a
 * test run the graph builder and the reference on identical weights without
 * writing a model folder.
 */
import { expectedTensors } from '../../main/engine/model/weights';
import type { ModelConfig } from '../../main/engine/model/types';
import type { WeightReader } from '../../main/engine/model/weights';
import type { Range } from '../../main/engine/parallel/split';

export function randomWeights(config: ModelConfig, seed = 1): Map<string, { shape: number[]; data: Float32Array }> {
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32 → uniform(-1, 1)
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 0x100000000) * 2 - 1;
  };
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = name.endsWith('norm.weight');
    const isEmbed = name === 'model.embed_tokens.weight';
    const fanIn = shape.length === 2 ? shape[1] : 1;
    const scale = isNorm ? 0.2 : isEmbed ? 1 : name === 'lm_head.weight' ? 3 / Math.sqrt(fanIn) : 1.7 / Math.sqrt(fanIn);
    for (let i = 0; i < n; i++) data[i] = isNorm ? 1 + scale * next() : scale * next();
    out.set(name, { shape, data });
  }
  return out;
}

export function memoryReader(weights: Map<string, { shape: number[]; data: Float32Array }>): WeightReader {
  return {
    has: (name) => weights.has(name),
    readF32: (name, slice) => {
      const t = weights.get(name);
      if (!t) throw new Error(`no tensor ${name}`);
      if (!slice) return t.data.slice();
      const cols = t.shape.length === 2 ? t.shape[1] : 1;
      const rows: Range = slice.rows ?? [0, t.shape[0]];
      const cr: Range = slice.cols ?? [0, cols];
      const out = new Float32Array((rows[1] - rows[0]) * (cr[1] - cr[0]));
      let o = 0;
      for (let r = rows[0]; r < rows[1]; r++) for (let c = cr[0]; c < cr[1]; c++) out[o++] = t.data[r * cols + c];
      return out;
    },
  };
}
