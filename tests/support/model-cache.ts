/**
 * Test setup shared by the engine tests: a private PARALAB_CACHE for one test
 * file (made before its tests, removed after), and synthetic variants of the
 * presets written into it (another architecture, head size, MoE layout, dtype).
 */
import { afterAll, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSyntheticModel } from '../../main/engine/model/synth';
import { presetConfig } from '../../main/engine/model/presets';
import type { PresetId } from '../../main/engine/model/presets';
import type { ModelConfig } from '../../main/engine/model/types';

/** Registers beforeAll / afterAll; `dir` is valid inside tests and hooks. */
export function useTempCache(prefix: string): { readonly dir: string } {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), `paralab-${prefix}-`));
    process.env.PARALAB_CACHE = dir;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    get dir() {
      return dir;
    },
  };
}

/** Write `variant(preset config)` as a model folder `name` under `cacheDir`; returns its path. */
export async function writeVariant(
  cacheDir: string,
  name: string,
  preset: PresetId,
  variant: (base: ModelConfig) => ModelConfig,
  opts: Parameters<typeof writeSyntheticModel>[2],
): Promise<string> {
  const dir = path.join(cacheDir, name);
  mkdirSync(dir);
  await writeSyntheticModel(dir, variant(presetConfig(preset)), opts);
  return dir;
}

/** A Qwen2-style model with head_dim 16: the fused GroupQueryAttention kernel and QKV bias. */
export const qwen2Gqa16 = (base: ModelConfig): ModelConfig => ({ ...base, family: 'qwen2', hfArchitecture: 'Qwen2ForCausalLM', heads: 4, kvHeads: 2, headDim: 16, qkvBias: true });
