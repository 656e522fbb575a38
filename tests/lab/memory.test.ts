/** Accounted per-rank memory: the formulas of main/lab/memory.ts worked by hand. */
import { describe, expect, it } from 'vitest';
import { activationPeakBytes, kvCacheBytes, localHeads, workloadActivationPeak, type ShardShape } from '../../main/lab/memory';

// synth-llama-tiny: hidden 64, 8 heads / 4 KV heads of 8, FFN 176, vocab 512, 4 layers
const tiny: ShardShape = { layers: [0, 4], hidden: 64, heads: 8, kvHeads: 4, headDim: 8, ffn: 176, vocab: 512, tp: 1, head: true };

describe('accounted memory', () => {
  it('splits heads over tp and replicates KV heads when tp exceeds them', () => {
    expect(localHeads({ heads: 8, kvHeads: 4, tp: 2 })).toEqual({ q: 4, kv: 2 });
    expect(localHeads({ heads: 8, kvHeads: 4, tp: 8 })).toEqual({ q: 1, kv: 1 });
  });

  it('KV cache: 2 × layers × kv heads × head dim × tokens × seqs × 4 bytes', () => {
    expect(kvCacheBytes(tiny, 2, 12)).toBe(2 * 4 * 4 * 8 * 12 * 2 * 4);
    expect(kvCacheBytes({ ...tiny, tp: 2 }, 2, 12)).toBe(2 * 4 * 2 * 8 * 12 * 2 * 4);
    expect(kvCacheBytes({ ...tiny, layers: [2, 4] }, 1, 10)).toBe(2 * 2 * 4 * 8 * 10 * 4);
  });

  it('activation peak: the largest segment of one step', () => {
    // B=1, S=8, T=8: attention 3·8·64 + 8·(8+8)·8 + 8·8·8 + 8·64 = 1536+1024+512+512 = 3584
    //                MLP 3·8·64 + 3·8·176 = 1536 + 4224 = 5760; head 64 + 512 = 576
    expect(activationPeakBytes(tiny, 1, 8, 8)).toBe(4 * 5760);
    // a long context makes the scores dominate: S=T=64 → attention 12288+8192+32768+4096 = 57344 > MLP 46080
    expect(activationPeakBytes(tiny, 1, 64, 64)).toBe(4 * 57344);
    // a stage without the head, tp=2: MLP 3·8·64 + 3·8·88 = 3648
    expect(activationPeakBytes({ ...tiny, tp: 2, head: false }, 1, 8, 8)).toBe(4 * 3648);
    // sp=2 splits a prefill: s = 4 tokens; attention 3·4·64 + 4·16·8 + 8·8·8/2 + 4·8·8 = 768+512+256+256 = 1792,
    // MLP 768 + 3·4·176 = 2880; decode steps are not split
    expect(activationPeakBytes({ ...tiny, sp: 2 }, 1, 8, 8)).toBe(4 * 2880);
    expect(activationPeakBytes({ ...tiny, sp: 2 }, 1, 1, 9)).toBe(activationPeakBytes(tiny, 1, 1, 9));
    // Megatron SP at tp=2: norm regions at S/2, gathered input in full: 8·64·(1 + 1) = 1024; MLP 1024 + 3·8·88 = 3136
    expect(activationPeakBytes({ ...tiny, tp: 2, head: false, megatronSp: true }, 1, 8, 8)).toBe(4 * 3136);
    // decode (S=1) is smaller than the prefill it follows
    expect(workloadActivationPeak(tiny, 1, 8, 4)).toBe(activationPeakBytes(tiny, 1, 8, 8));
  });
});
