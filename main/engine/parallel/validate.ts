/**
 * Checks a ParallelSpec against one model: which number must divide which,
 * and which shapes fall back to a documented behaviour instead of an error.
 *
 * Errors (SpecError 'model-mismatch' / 'unsupported'), each naming the fix:
 *   - tp must divide the attention heads (Megatron column-parallel QKV)
 *   - pp ≤ layers
 *   - ep needs an MoE model, and ep must divide the experts
 *   - Ulysses degree must divide the heads held by one tp rank (the
 *     all-to-all trades a sequence split for a head split)
 *   - axes / sp_impl values this build does not run yet (`supported`)
 *
 * Fallbacks, returned as notes for the UI / CLI to show:
 *   - KV heads that do not split over tp (or tp·ulysses): replicated
 *   - layers not divisible by pp: uneven contiguous stages (first ones longer)
 *   - vocab / FFN not divisible by tp: uneven shards (split.ts)
 */
import type { ModelConfig } from '../model/types';
import { MAX_WORLD, SpecError, usedAxes, type Axis, type ParallelSpec, type SpImpl } from './spec';
import { splitEven, splitSizes } from './split';
import { holdsKvTwice } from './tp/layout';

/** Axes this build executes; the spec parser accepts the full grammar and refuses the rest clearly. */
export const SUPPORTED_AXES: readonly Axis[] = ['dp', 'pp', 'tp', 'sp', 'ep'];
/** sp_impl values this build executes. */
export const SUPPORTED_SP_IMPL: readonly SpImpl[] = ['ulysses', 'ring', 'usp', 'megatron'];

export interface ValidateOptions {
  /** axes this build can run; a spec using any other axis is refused */
  supported?: Axis[];
  /** sp_impl values this build can run (when sp > 1 or sp_impl=megatron) */
  supportedSpImpl?: SpImpl[];
  /** name used in messages, e.g. the preset id; defaults to the HF architecture */
  modelName?: string;
}

export interface SpecCheck {
  /** documented fallbacks that apply to this spec × model, one line each */
  notes: string[];
}

const AXIS_NAME: Record<Axis, string> = {
  dp: 'data parallelism',
  pp: 'pipeline parallelism',
  tp: 'tensor parallelism',
  sp: 'sequence parallelism',
  ep: 'expert parallelism',
};

/** Throws SpecError when the spec cannot run on this model; otherwise returns notes. */
export function validateSpecForModel(spec: ParallelSpec, config: ModelConfig, opts: ValidateOptions = {}): SpecCheck {
  checkSupported(spec, opts);
  const notes: string[] = [];
  checkTp(spec, config, notes);
  checkPp(spec, config, notes);
  checkSp(spec, config, notes);
  checkEp(spec, config, opts.modelName ?? config.hfArchitecture, notes);
  return { notes };
}

function checkSupported(spec: ParallelSpec, opts: ValidateOptions): void {
  if (opts.supported) {
    for (const axis of usedAxes(spec)) {
      if (!opts.supported.includes(axis)) {
        const what = axis === 'sp' && spec.spImpl === 'megatron' && spec.sp === 1 ? 'sp_impl=megatron' : axis;
        throw new SpecError(
          'unsupported',
          `${AXIS_NAME[axis]} (${what}) is not available yet in this build; supported now: ${opts.supported.join(', ') || 'single only'}`,
        );
      }
    }
  }
  const usesSp = spec.sp > 1 || spec.spImpl === 'megatron';
  if (opts.supportedSpImpl && usesSp && !opts.supportedSpImpl.includes(spec.spImpl)) {
    throw new SpecError(
      'unsupported',
      `sp_impl=${spec.spImpl} is not available yet in this build; supported now: ${opts.supportedSpImpl.join(', ')}`,
    );
  }
}

function checkTp(spec: ParallelSpec, c: ModelConfig, notes: string[]): void {
  const { tp } = spec;
  if (tp === 1) return;
  if (tp > c.heads) {
    throw new SpecError('model-mismatch', `tp=${tp} exceeds the ${c.heads} attention heads (each tp rank needs at least one); use tp ≤ ${c.heads}`);
  }
  const usesSp = spec.sp > 1 || spec.spImpl === 'megatron';
  if (c.heads % tp !== 0 && usesSp) {
    throw new SpecError('unsupported', `tp=${tp} splits ${c.heads} attention heads unevenly (${sizesText(c.heads, tp)}), which runs with dp, pp and ep but not yet with sequence parallelism; use tp ∈ {${validDegrees(c.heads).join(',')}} with sp`);
  }
  // a rank whose heads cut across KV groups holds a KV head twice (tp/layout.ts); the sp attention blocks split heads by KV group and cannot take that yet
  if (usesSp && Array.from({ length: tp }, (_, r) => holdsKvTwice(c.heads, c.kvHeads, splitEven(c.heads, tp, r))).some(Boolean)) {
    throw new SpecError('unsupported', `tp=${tp} cuts the KV groups of ${c.heads} heads / ${c.kvHeads} KV heads (a rank would hold a KV head twice), which runs without sequence parallelism but not yet with it; use a tp that divides or is a multiple of ${c.kvHeads} with sp`);
  }
  if (c.heads % tp !== 0) notes.push(`tp=${tp} splits ${c.heads} attention heads unevenly (${sizesText(c.heads, tp)}): the rank with the most heads sets the pace`);
  if (c.qkNorm && c.qkNormScope === 'projection') {
    throw new SpecError('model-mismatch', `tp=${tp}: this model's q/k RMSNorm spans the whole projection (OLMoE), so splitting its heads over tp ranks would need the norm's statistics from every rank; use tp=1 with dp, pp, sp or ep`);
  }
  if (c.kvHeads % tp !== 0 || c.heads % tp !== 0) notes.push(kvReplicationNote(`tp=${tp}`, tp, c.kvHeads));
  if (c.vocabSize % tp !== 0) {
    notes.push(`vocab ${c.vocabSize} is not a multiple of tp=${tp}: LM-head shards are uneven (${sizesText(c.vocabSize, tp)})`);
  }
  const ffn = c.moe ? c.moe.expertFfn : c.ffn;
  if (ffn % tp !== 0) notes.push(`FFN ${ffn} is not a multiple of tp=${tp}: MLP shards are uneven (${sizesText(ffn, tp)})`);
}

function checkPp(spec: ParallelSpec, c: ModelConfig, notes: string[]): void {
  const { pp } = spec;
  if (pp === 1) return;
  if (pp > c.layers) {
    throw new SpecError('model-mismatch', `pp=${pp} exceeds the ${c.layers} layers of this model; use pp ≤ ${c.layers}`);
  }
  if (c.layers % pp !== 0) notes.push(`uneven stages: layers split ${sizesText(c.layers, pp)}`);
}

function checkSp(spec: ParallelSpec, c: ModelConfig, notes: string[]): void {
  const { sp, tp, spImpl, ulysses } = spec;
  if (spImpl === 'megatron') {
    if (tp === 1) notes.push('sp_impl=megatron splits the sequence over the tp ranks; with tp=1 it changes nothing');
    return;
  }
  if (sp === 1) {
    if (spImpl !== 'ulysses') notes.push(`sp_impl=${spImpl} has no effect with sp=1`);
    return;
  }
  if (ulysses === 1) return; // pure ring attention: every rank keeps all its heads
  const headsPerTp = c.heads / tp;
  if (headsPerTp % ulysses !== 0) {
    const where = tp > 1 ? `the ${headsPerTp} attention heads per tp rank (${c.heads} heads / tp=${tp})` : `${c.heads} attention heads`;
    const fix = spImpl === 'usp'
      ? `use ulysses ∈ {${validDegrees(headsPerTp).filter((u) => sp % u === 0).join(',')}}`
      : `use sp ∈ {${validDegrees(headsPerTp).join(',')}} or sp_impl=ring`;
    const what = spImpl === 'usp' ? `ulysses=${ulysses}` : `sp=${sp}`;
    throw new SpecError('model-mismatch', `${what} does not divide ${where} (Ulysses splits heads across the sp ranks); ${fix}`);
  }
  if (c.kvHeads % (tp * ulysses) !== 0) {
    const label = tp > 1 ? `tp·ulysses=${tp * ulysses}` : spImpl === 'usp' ? `ulysses=${ulysses}` : `sp=${sp}`;
    notes.push(kvReplicationNote(label, tp * ulysses, c.kvHeads));
  }
}

function checkEp(spec: ParallelSpec, c: ModelConfig, modelName: string, notes: string[]): void {
  const { ep } = spec;
  if (ep === 1) return;
  if (!c.moe) {
    throw new SpecError('model-mismatch', `ep=${ep} needs a Mixture-of-Experts model; ${modelName} is dense`);
  }
  const experts = c.moe.experts;
  if (ep > experts) {
    throw new SpecError('model-mismatch', `ep=${ep} exceeds the ${experts} experts of this model (each ep rank needs at least one); use ep ≤ ${experts}`);
  }
  if (experts % ep !== 0) notes.push(`ep=${ep} splits the ${experts} experts unevenly (${sizesText(experts, ep)} per rank): the ranks with more experts hold more weights and, on balanced routing, more tokens`);
  // EP token classes (parallel/ep/plan.ts): tp ranks in one ep group share tokens and split them.
  if (spec.tp > 1 && spec.tp % ep !== 0 && ep % spec.tp !== 0) {
    throw new SpecError('unsupported', `ep=${ep} with tp=${spec.tp}: one must divide the other; use ep ∈ {${[...validDegrees(spec.tp), ...[2, 4, 8].map((k) => k * spec.tp)].filter((d) => d > 1 && d <= experts).join(',')}}`);
  }
  if (spec.sp > 1 || spec.spImpl === 'megatron') {
    throw new SpecError('unsupported', `ep=${ep} with sequence parallelism is not available yet; use ep with dp, tp and pp`);
  }
}

/** Why KV heads are replicated: `ranks` ranks share `kvHeads` KV heads. */
function kvReplicationNote(label: string, ranks: number, kvHeads: number): string {
  if (ranks % kvHeads === 0) {
    return `${label} exceeds the ${kvHeads} KV heads: each KV head is replicated on ${ranks / kvHeads} ranks`;
  }
  return `${label} does not divide the ${kvHeads} KV heads: each rank keeps the KV heads its query heads read (some replicated)`;
}

/**
 * Degrees that split n evenly and fit in a world, e.g. 8 → [1, 2, 4, 8].
 * Only candidates up to MAX_WORLD are tried: a config's head or expert count
 * is the model's to choose, and listing every divisor of a 16-digit one would
 * not finish.
 */
function validDegrees(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= Math.min(n, MAX_WORLD); d++) if (n % d === 0) out.push(d);
  return out;
}

function sizesText(n: number, parts: number): string {
  return splitSizes(n, parts).join('/');
}
