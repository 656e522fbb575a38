/**
 * Real trained weights: the stories260K llama2.c checkpoint from ../shared
 * (skipped where it is absent), imported to a Hugging Face folder and run by
 * real rank processes. Every plan must give the tokens, and logits within
 * verify's tolerance, of an independent transcription of llama2.c's run.c
 * (tests/support/llama2c-reference.ts) — which also pins the q/k row
 * permutation between llama2.c's interleaved RoPE and HF's rotate-half.
 * Broken checkpoints are refused with a message naming the file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../main/engine/host/engine';
import { listModels, resolveModel } from '../../main/engine/model/catalog';
import { interleavedToHalves } from '../../main/engine/model/llama2c';
import { TOLERANCE } from '../../main/engine/host/verify';
import { readRunC, runCGreedy } from '../support/llama2c-reference';
import { useTempCache } from '../support/model-cache';
import { maxLogitDiff } from '../support/expect-engine';

const BIN = path.resolve(__dirname, '../../../shared/models/stories260K/stories260K.bin');
// (a Git LFS pointer in place of the file counts as absent)
const present = (fs.statSync(BIN, { throwIfNoEntry: false })?.size ?? 0) > 100_000;
const cache = useTempCache('llama2c');

it('interleaved pairs → rotate-half rows, per head, whole rows moved', () => {
  // 2 heads of 8 rows, 2 columns; row r holds (r, r + 0.5). Pairs (0,1)(2,3)(4,5)(6,7) → halves 0 2 4 6 | 1 3 5 7.
  const w = Float32Array.from({ length: 16 * 2 }, (_, i) => Math.floor(i / 2) + (i % 2) / 2);
  const rows = Array.from(interleavedToHalves(w, 2, 8, 2)).filter((_, i) => i % 2 === 0);
  expect(rows).toEqual([0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]);
  expect(Array.from(interleavedToHalves(w, 2, 8, 2)).filter((_, i) => i % 2 === 1)).toEqual(rows.map((r) => r + 0.5));
});

/** A llama2.c legacy file with random weights: GQA, an untied classifier (negative vocab in the header). */
function writeRandomCheckpoint(file: string, h: { dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; seqLen: number }): void {
  const kv = (h.dim / h.heads) * h.kvHeads;
  const { dim: D, hidden: F, layers: L, vocab: V } = h;
  let seed = 12345;
  const rnd = (n: number, scale: number, mean = 0) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return mean + scale * (seed / 2 ** 31 - 0.5);
    });
  const parts = [
    rnd(V * D, 1), rnd(L * D, 0.2, 1), rnd(L * D * D, 0.6), rnd(L * kv * D, 0.6), rnd(L * kv * D, 0.6), rnd(L * D * D, 0.6),
    rnd(L * D, 0.2, 1), rnd(L * F * D, 0.6), rnd(L * D * F, 0.6), rnd(L * F * D, 0.6), rnd(D, 0.2, 1),
    rnd(h.seqLen * (D / h.heads), 1), // the two legacy RoPE tables (ignored by both sides)
    rnd(V * D, 0.6), // the untied classifier
  ];
  const header = Buffer.from(Int32Array.from([D, F, L, h.heads, h.kvHeads, -V, h.seqLen]).buffer);
  fs.writeFileSync(file, Buffer.concat([header, ...parts.map((p) => Buffer.from(p.buffer))]));
}

describe('a random llama2.c checkpoint (GQA, untied classifier; runs everywhere)', () => {
  it('imports and generates what run.c computes, under single and tp=2', async () => {
    const file = path.join(cache.dir, 'random-untied.bin');
    writeRandomCheckpoint(file, { dim: 32, hidden: 48, layers: 2, heads: 4, kvHeads: 2, vocab: 40, seqLen: 64 });
    const { config } = await resolveModel(file);
    expect(config).toMatchObject({ hidden: 32, ffn: 48, layers: 2, heads: 4, kvHeads: 2, vocabSize: 40, maxPositions: 64, tieEmbeddings: false });
    const prompt = [1, 7, 20, 33, 5];
    const want = runCGreedy(readRunC(file), prompt, 10);
    for (const spec of ['single', 'tp=2']) {
      const e = await Engine.start({ model: file, parallel: spec, threadsPerRank: 1 });
      try {
        const { outputs } = await e.generate([prompt], { maxNewTokens: 10, wantLogits: true, ignoreEos: true });
        expect(outputs[0].tokens, spec).toEqual(want.tokens);
        expect(maxLogitDiff(outputs[0].logits, want.logits), spec).toBeLessThan(1e-4);
      } finally {
        await e.close();
      }
    }
  });
});

describe.skipIf(!present)(`stories260K (llama2.c, real trained weights)${present ? '' : ' — SKIPPED: ../shared/models/stories260K is absent'}`, () => {
  let oracle: ReturnType<typeof readRunC>;
  beforeAll(() => {
    oracle = readRunC(BIN);
  });

  it('imports once into the cache as a Llama folder with the checkpoint’s shape, and lists it', async () => {
    const a = await resolveModel(BIN);
    expect(a.id).toBe(BIN);
    expect(a.dir.startsWith(path.join(cache.dir, 'imported'))).toBe(true);
    expect(a.config).toMatchObject({ family: 'llama', hidden: 64, layers: 5, heads: 8, kvHeads: 4, headDim: 8, ffn: 172, vocabSize: 512, maxPositions: 512, tieEmbeddings: true });
    const written = fs.statSync(path.join(a.dir, 'model.safetensors')).mtimeMs;
    const b = await resolveModel(BIN);
    expect(b.dir).toBe(a.dir);
    expect(fs.statSync(path.join(b.dir, 'model.safetensors')).mtimeMs).toBe(written);
    const [m] = (await listModels({ paths: [BIN] })).filter((x) => x.id === BIN);
    expect(m).toMatchObject({ runnable: true, layers: 5, vocabSize: 512 });
    expect(m.params).toBeGreaterThan(250_000);
    expect(m.params).toBeLessThan(300_000);
    expect(m.note).toMatch(/no tokenizer: prompt with token ids/);
  });

  it('single reproduces run.c greedy tokens and logits, from BOS and from a longer prompt', async () => {
    const e = await Engine.start({ model: BIN, parallel: 'single', threadsPerRank: 1 });
    try {
      for (const prompt of [[1], [1, 403, 407, 261, 378, 425, 274, 299, 283, 264, 13, 431]]) {
        const want = runCGreedy(oracle, prompt, 24);
        const { outputs } = await e.generate([prompt], { maxNewTokens: 24, wantLogits: true, ignoreEos: true });
        expect(outputs[0].tokens).toEqual(want.tokens);
        expect(maxLogitDiff(outputs[0].logits, want.logits)).toBeLessThan(1e-4);
      }
    } finally {
      await e.close();
    }
  });

  it('every parallel plan gives run.c’s tokens (logits within verify’s tolerance) on a 40-token prompt', async () => {
    const prompt = [1, ...runCGreedy(oracle, [1], 39).tokens];
    const want = runCGreedy(oracle, prompt, 12);
    const specs = ['tp=2', 'tp=4', 'pp=2', 'pp=5', 'pp=2,tp=2', 'dp=2', 'sp=2', 'sp=4,sp_impl=ring', 'sp=4,sp_impl=usp,ulysses=2', 'tp=2,sp_impl=megatron'];
    for (const spec of specs) {
      const e = await Engine.start({ model: BIN, parallel: spec, threadsPerRank: 1 });
      try {
        const { outputs } = await e.generate([prompt, prompt], { maxNewTokens: 12, wantLogits: true, ignoreEos: true });
        for (const out of outputs) {
          expect(out.tokens, spec).toEqual(want.tokens);
          expect(maxLogitDiff(out.logits, want.logits), spec).toBeLessThan(TOLERANCE.float32);
        }
      } finally {
        await e.close();
      }
    }
  }, 120_000);
});

describe('broken llama2.c checkpoints are refused naming the file', () => {
  const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'paralab-l2c-bad-'));
  const header = (ints: number[]) => Buffer.from(Int32Array.from(ints).buffer);

  it('truncated, a version-1 export, a header that is not one', async () => {
    const d = dir();
    try {
      // a well-formed tiny checkpoint (dim 4, hidden 4, 1 layer, 2 heads, 2 kv heads, vocab 8, seq 4) cut short
      const cut = path.join(d, 'cut.bin');
      fs.writeFileSync(cut, Buffer.concat([header([4, 4, 1, 2, 2, 8, 4]), Buffer.alloc(4 * 50)]));
      await expect(resolveModel(cut)).rejects.toMatchObject({ code: 'config-invalid', message: expect.stringMatching(/cut\.bin: is 228 bytes, but a llama2\.c legacy checkpoint with this header .* is 684 bytes; the file is truncated/) });
      const v1 = path.join(d, 'v1.bin');
      fs.writeFileSync(v1, Buffer.concat([header([0x616b3432, 1]), Buffer.alloc(256)]));
      await expect(resolveModel(v1)).rejects.toThrow(/v1\.bin: a llama2\.c version-1 export; only the legacy \(version 0\) format is read/);
      const junk = path.join(d, 'junk.bin');
      fs.writeFileSync(junk, Buffer.from('this is not a checkpoint at all, just some text'));
      await expect(resolveModel(junk)).rejects.toThrow(/junk\.bin: the header .* is not a llama2\.c checkpoint's/);
      const listed = (await listModels({ paths: [cut] })).find((m) => m.id === cut);
      expect(listed).toMatchObject({ id: cut, runnable: false, note: expect.stringMatching(/truncated/) });
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

