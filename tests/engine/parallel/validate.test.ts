import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../../main/engine/model/types';
import { parseSpec, SpecError } from '../../../main/engine/parallel/spec';
import { validateSpecForModel, type ValidateOptions } from '../../../main/engine/parallel/validate';

/** synth-llama-tiny's shape (DESIGN.md). */
const LLAMA_TINY: ModelConfig = {
  family: 'llama', hfArchitecture: 'LlamaForCausalLM', vocabSize: 512, hidden: 64, layers: 4, heads: 8, kvHeads: 4,
  headDim: 8, ffn: 176, rmsEps: 1e-5, ropeTheta: 10000, ropeScaling: null, maxPositions: 2048, tieEmbeddings: false,
  qkvBias: false, qkNorm: false, moe: null, dtype: 'float32', bosTokenId: null, eosTokenIds: [2],
};
const EIGHT_LAYERS: ModelConfig = { ...LLAMA_TINY, layers: 8 };
const MOE_TINY: ModelConfig = {
  ...LLAMA_TINY, family: 'mixtral', hfArchitecture: 'MixtralForCausalLM', ffn: 0,
  moe: { experts: 8, topK: 2, expertFfn: 96, normTopK: true, sharedExpertFfn: 0 },
};

function check(spec: string, config: ModelConfig, opts?: ValidateOptions): string[] {
  return validateSpecForModel(parseSpec(spec), config, opts).notes;
}
function messageOf(spec: string, config: ModelConfig, opts?: ValidateOptions): string {
  try {
    check(spec, config, opts);
  } catch (e) {
    if (e instanceof SpecError) return e.message;
    throw e;
  }
  throw new Error(`expected ${spec} to be refused`);
}

describe('validateSpecForModel', () => {
  it('accepts plain specs without notes', () => {
    expect(check('single', LLAMA_TINY)).toEqual([]);
    expect(check('dp=2,tp=2', LLAMA_TINY)).toEqual([]);
    expect(check('pp=2,tp=4', LLAMA_TINY)).toEqual([]);
    expect(check('dp=2,ep=2', MOE_TINY)).toEqual([]);
  });

  it('tp may split the heads unevenly (a note), never beyond one head per rank', () => {
    expect(check('tp=3', LLAMA_TINY)[0]).toBe('tp=3 splits 8 attention heads unevenly (3/3/2): the rank with the most heads sets the pace');
    expect(messageOf('tp=16', LLAMA_TINY)).toBe('tp=16 exceeds the 8 attention heads (each tp rank needs at least one); use tp ≤ 8');
  });

  it('replicates KV heads when tp exceeds them', () => {
    expect(check('tp=8', LLAMA_TINY)).toEqual(['tp=8 exceeds the 4 KV heads: each KV head is replicated on 2 ranks']);
    const notes = check('tp=4', { ...LLAMA_TINY, heads: 12, kvHeads: 6, headDim: 4 });
    expect(notes[0]).toMatch(/tp=4 does not divide the 6 KV heads.*replicated/);
  });

  it('notes uneven vocab and FFN shards', () => {
    const notes = check('tp=2', { ...LLAMA_TINY, vocabSize: 513, ffn: 175 });
    expect(notes).toEqual([
      'vocab 513 is not a multiple of tp=2: LM-head shards are uneven (257/256)',
      'FFN 175 is not a multiple of tp=2: MLP shards are uneven (88/87)',
    ]);
  });

  it('pp must not exceed the layers; uneven stages are a note', () => {
    expect(messageOf('pp=9', EIGHT_LAYERS)).toBe('pp=9 exceeds the 8 layers of this model; use pp ≤ 8');
    expect(check('pp=3', EIGHT_LAYERS)).toEqual(['uneven stages: layers split 3/3/2']);
  });

  it('ep needs an MoE model with enough experts', () => {
    expect(messageOf('dp=2,ep=2', LLAMA_TINY, { modelName: 'synth-llama-tiny' })).toBe(
      'ep=2 needs a Mixture-of-Experts model; synth-llama-tiny is dense',
    );
    expect(messageOf('dp=2,ep=2', LLAMA_TINY)).toMatch(/LlamaForCausalLM is dense/);
    expect(messageOf('dp=16,ep=16', MOE_TINY)).toBe('ep=16 exceeds the 8 experts of this model (each ep rank needs at least one); use ep ≤ 8');
    expect(check('dp=3,ep=3', MOE_TINY)).toEqual(['ep=3 splits the 8 experts unevenly (3/3/2 per rank): the ranks with more experts hold more weights and, on balanced routing, more tokens']);
  });

  it('ulysses degree must divide the heads (per tp rank)', () => {
    expect(messageOf('sp=3', LLAMA_TINY)).toMatch(/^sp=3 does not divide 8 attention heads .*use sp ∈ \{1,2,4,8\} or sp_impl=ring$/);
    expect(messageOf('tp=4,sp=4', LLAMA_TINY)).toMatch(/sp=4 does not divide the 2 attention heads per tp rank \(8 heads \/ tp=4\)/);
    expect(messageOf('sp=6,sp_impl=usp,ulysses=3', LLAMA_TINY)).toMatch(/ulysses=3 does not divide 8 attention heads.*use ulysses ∈ \{1,2\}/);
    expect(check('sp=3,sp_impl=ring', LLAMA_TINY)).toEqual([]);
    expect(check('sp=8', LLAMA_TINY)).toEqual(['sp=8 exceeds the 4 KV heads: each KV head is replicated on 2 ranks']);
    expect(check('sp=4,sp_impl=usp,ulysses=2', LLAMA_TINY)).toEqual([]);
  });

  it('refuses axes this build does not run yet', () => {
    const supported: ValidateOptions = { supported: ['dp', 'pp', 'tp'] };
    expect(messageOf('sp=2', LLAMA_TINY, supported)).toBe(
      'sequence parallelism (sp) is not available yet in this build; supported now: dp, pp, tp',
    );
    expect(messageOf('tp=2,sp_impl=megatron', LLAMA_TINY, supported)).toBe(
      'sequence parallelism (sp_impl=megatron) is not available yet in this build; supported now: dp, pp, tp',
    );
    expect(messageOf('dp=2,ep=2', MOE_TINY, supported)).toMatch(/^expert parallelism \(ep\) is not available yet/);
    expect(check('dp=2,pp=2,tp=2', LLAMA_TINY, supported)).toEqual([]);
    expect(messageOf('sp=2,sp_impl=ring', LLAMA_TINY, { supportedSpImpl: ['ulysses'] })).toBe(
      'sp_impl=ring is not available yet in this build; supported now: ulysses',
    );
  });
});
