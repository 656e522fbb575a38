/**
 * A real rank process (forked, loading synth-llama-tiny from its HF folder,
 * running onnxruntime sessions) generates exactly what the plain TypeScript
 * reference computes from the same files; a rank that dies fails the run
 * with a message naming it, leaves no process behind, and the next run works.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../../main/engine/host/engine';
import { WeightStore } from '../../main/engine/model/weights';
import { ReferenceModel, referenceGreedy } from '../../main/engine/reference/forward';
import { useTempCache, writeVariant } from '../support/model-cache';

const cache = useTempCache('rank');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('single rank process', () => {
  it('generates the reference greedy tokens from synth-llama-tiny (max |Δlogit| ≤ 1e-4)', async () => {
    const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    try {
      const prompt = [1, 2, 3, 200, 17, 45];
      const { outputs } = await engine.generate([prompt], { maxNewTokens: 12, wantLogits: true, ignoreEos: true });
      const store = WeightStore.open(engine.modelDir);
      const ref = new ReferenceModel(engine.config, (n) => store.readF32(n));
      const want = referenceGreedy(ref, prompt, 12);
      store.close();
      expect(outputs[0].tokens).toEqual(want.tokens);
      let diff = 0;
      want.logits.forEach((l, i) => l.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - outputs[0].logits[i][j])))));
      expect(diff).toBeLessThanOrEqual(1e-4);
      expect(new Set(want.tokens).size).toBeGreaterThan(3);
    } finally {
      await engine.close();
    }
  });

  it('bf16 and fp16 weight files (converted to fp32 on load) generate what the reference computes from them', async () => {
    for (const dtype of ['BF16', 'F16'] as const) {
      const dir = await writeVariant(cache.dir, `half-${dtype}`, 'synth-llama-tiny', (base) => base, { seed: 3, dtype });
      const engine = await Engine.start({ model: dir, parallel: 'single', threadsPerRank: 1 });
      try {
        const { outputs } = await engine.generate([[7, 8, 9]], { maxNewTokens: 6, ignoreEos: true });
        const store = WeightStore.open(dir);
        expect(store.dtype('model.layers.0.mlp.up_proj.weight')).toBe(dtype);
        const ref = new ReferenceModel(engine.config, (n) => store.readF32(n));
        expect(outputs[0].tokens).toEqual(referenceGreedy(ref, [7, 8, 9], 6).tokens);
        store.close();
      } finally {
        await engine.close();
      }
    }
  });

  it('a batch of sequences decodes each as it would alone', async () => {
    const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    try {
      const a = [5, 6, 7, 8];
      const b = [100, 90, 80, 70];
      const both = await engine.generate([a, b], { maxNewTokens: 6, ignoreEos: true });
      const alone = await engine.generate([b], { maxNewTokens: 6, ignoreEos: true });
      expect(both.outputs[1].tokens).toEqual(alone.outputs[0].tokens);
      expect(both.outputs[0].tokens).not.toEqual(both.outputs[1].tokens);
    } finally {
      await engine.close();
    }
  });

  it('a rank killed mid-generation fails the run clearly; no process is left; the next run works', async () => {
    const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    const [pid] = engine.cluster.pids();
    const t0 = Date.now();
    const run = engine.generate([[1, 2, 3]], {
      maxNewTokens: 4000, // the context holds 4096; a rank dies long before the end
      ignoreEos: true,
      onToken: (_s, _t) => {
        if (Date.now() - t0 > 100) process.kill(pid, 'SIGKILL');
      },
    });
    await expect(run).rejects.toThrow(/rank 0 \(pid \d+\) was killed by SIGKILL/);
    expect(Date.now() - t0).toBeLessThan(5000);
    await engine.close();
    expect(alive(pid)).toBe(false);

    const again = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    const { outputs } = await again.generate([[1, 2, 3]], { maxNewTokens: 3, ignoreEos: true });
    expect(outputs[0].tokens).toHaveLength(3);
    await again.close();
  });

  it('out-of-range token ids are refused before reaching a rank', async () => {
    const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    try {
      await expect(engine.generate([[1, 512]], { maxNewTokens: 2 })).rejects.toThrow(/token id 512 is out of range .* 512/);
      const { outputs } = await engine.generate([[1, 2]], { maxNewTokens: 2, ignoreEos: true });
      expect(outputs[0].tokens).toHaveLength(2);
    } finally {
      await engine.close();
    }
  });

  it('a prompt and output longer than the context are refused before reaching a rank; exactly full is fine', async () => {
    await expect(Engine.start({ model: 'synth-llama-tiny', parallel: 'single', maxSeq: 1_000_000 })).rejects.toMatchObject({
      code: 'context-too-long',
      message: expect.stringMatching(/needs a context of 1000000 positions, but the model has \d+ \(max_position_embeddings\)/),
    });
    const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1, maxSeq: 12 });
    try {
      const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
      await expect(engine.generate([prompt], { maxNewTokens: 4 })).rejects.toMatchObject({
        code: 'context-too-long',
        message: 'a prompt of 10 tokens with 4 new tokens needs 13 positions, but this engine was started for 12 positions (the model allows 4096); use at most 3 new tokens or a shorter prompt',
      });
      await expect(engine.generate([[...prompt, 1, 2, 3]], { maxNewTokens: 1 })).rejects.toThrow(
        'a prompt of 13 tokens does not fit: this engine was started for 12 positions (the model allows 4096); shorten the prompt',
      );
      // prompt + 3 new tokens: positions 0..11, the last token is not fed back
      const { outputs } = await engine.generate([prompt], { maxNewTokens: 3, ignoreEos: true });
      expect(outputs[0].tokens).toHaveLength(3);
    } finally {
      await engine.close();
    }
  });
});
