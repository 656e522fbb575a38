/**
 * The parallel spec: the string that names a mesh (`tp=2`, `dp=2,tp=2`,
 * `sp=4,sp_impl=ring`, `tp=2,sp_impl=megatron`, `single`), parsed into one
 * validated object, and printed back in one canonical form.
 *
 * Grammar (DESIGN.md "Parallel spec"): `single`, or comma-separated
 * `key=value` items; keys are case-insensitive and whitespace is ignored.
 *
 *   dp, pp, tp, sp, ep   positive integer degrees (default 1)
 *   micro=M              pipeline micro-batches (default pp)
 *   sp_impl=ulysses|ring|usp|megatron   (default ulysses)
 *   ulysses=U            the Ulysses degree inside sp; only with sp_impl=usp, U divides sp
 *   ring_chunks=zigzag|naive   how ring attention cuts the sequence (default zigzag)
 *   ep_tp=share|allreduce      how the tp ranks of an ep group split MoE work
 *                        (parallel/ep/plan.ts): `share` (default) splits the
 *                        tokens and all-gathers; `allreduce` runs every rank's
 *                        experts on all tokens and all-reduces — only when tp = ep
 *
 * world = dp·pp·tp·sp. ep shards experts over ranks of one stage, so it must
 * divide dp·tp·sp. Megatron sequence parallelism runs on the tp ranks and is
 * written without an sp key. Checks that need the model live in validate.ts.
 */
import { divisors } from './split';

export type SpImpl = 'ulysses' | 'ring' | 'usp' | 'megatron';

/** The mesh axes a spec can give a degree > 1. */
export type Axis = 'dp' | 'pp' | 'tp' | 'sp' | 'ep';

export interface ParallelSpec {
  dp: number;
  pp: number;
  tp: number;
  sp: number;
  ep: number;
  /** pipeline micro-batches */
  micro: number;
  spImpl: SpImpl;
  /**
   * Ulysses (all-to-all) degree inside the sp group; the ring degree is sp/ulysses.
   * ulysses: = sp; ring: 1; usp: as written; megatron: 1.
   */
  ulysses: number;
  /** how ring attention (sp_impl=ring|usp) cuts the sequence: zigzag (causally balanced, default) or naive contiguous chunks */
  ringChunks: 'zigzag' | 'naive';
  /** how the tp ranks of an ep group split the MoE work: token shares + all-gather (default), or all tokens + all-reduce (tp = ep) */
  epTp: 'share' | 'allreduce';
  /** dp·pp·tp·sp ranks */
  world: number;
}

export type SpecErrorCode =
  | 'empty'
  | 'syntax'
  | 'unknown-key'
  | 'bad-number'
  | 'duplicate-key'
  | 'zero'
  | 'bad-sp-impl'
  | 'bad-ring-chunks'
  | 'ring-chunks-without-ring'
  | 'single-with-keys'
  | 'ep-divides'
  | 'ulysses-without-usp'
  | 'ulysses-divides'
  | 'usp-needs-ulysses'
  | 'megatron-with-sp'
  | 'bad-ep-tp'
  | 'ep-tp-needs-tp-eq-ep'
  | 'world-too-large'
  | 'model-mismatch'
  | 'unsupported';

/** A spec that cannot run; `message` is one line saying what to change. */
export class SpecError extends Error {
  constructor(
    readonly code: SpecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

/** Largest world a spec may ask for (ranks are processes on one or few hosts). */
export const MAX_WORLD = 64;

const KEYS = ['dp', 'pp', 'tp', 'sp', 'ep', 'micro', 'sp_impl', 'ulysses', 'ring_chunks', 'ep_tp'] as const;
type Key = (typeof KEYS)[number];
const SP_IMPLS: readonly SpImpl[] = ['ulysses', 'ring', 'usp', 'megatron'];

/** The spec of one worker: every degree 1. */
export const SINGLE: ParallelSpec = Object.freeze({
  dp: 1, pp: 1, tp: 1, sp: 1, ep: 1, micro: 1, spImpl: 'ulysses', ulysses: 1, ringChunks: 'zigzag', epTp: 'share', world: 1,
});

/** Parse and check a spec string; throws SpecError with an actionable message. */
export function parseSpec(text: string): ParallelSpec {
  const trimmed = text.trim();
  if (trimmed === '') throw new SpecError('empty', "empty parallel spec; write 'single' or degrees such as 'tp=2' or 'dp=2,tp=2'");
  if (trimmed.toLowerCase() === 'single') return { ...SINGLE };

  const values = new Map<Key, string>();
  for (const raw of trimmed.split(',')) {
    const item = raw.trim();
    if (item === '') continue; // tolerate "dp=2,"
    if (item.toLowerCase() === 'single') {
      throw new SpecError('single-with-keys', `'single' cannot be combined with other keys in '${shown(text)}'; drop 'single' or the other keys`);
    }
    const eq = item.indexOf('=');
    if (eq < 0) throw new SpecError('syntax', `expected key=value, got '${shown(item)}'; e.g. 'tp=2'`);
    const key = item.slice(0, eq).trim().toLowerCase();
    const value = item.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new SpecError('unknown-key', `unknown key '${shown(key)}' in '${shown(item)}'; use ${KEYS.join(', ')}`);
    }
    if (values.has(key as Key)) throw new SpecError('duplicate-key', `key '${key}' is given twice in '${shown(text)}'; keep one`);
    values.set(key as Key, value);
  }
  if (values.size === 0) throw new SpecError('empty', "empty parallel spec; write 'single' or degrees such as 'tp=2'");

  const degree = (key: Exclude<Key, 'sp_impl' | 'ring_chunks' | 'ep_tp'>): number | undefined => {
    const v = values.get(key);
    return v === undefined ? undefined : parseDegree(key, v);
  };
  const dp = degree('dp') ?? 1;
  const pp = degree('pp') ?? 1;
  const tp = degree('tp') ?? 1;
  const sp = degree('sp') ?? 1;
  const ep = degree('ep') ?? 1;
  const micro = degree('micro') ?? pp;
  const spImpl = parseSpImpl(values.get('sp_impl'));
  const ulyssesGiven = degree('ulysses');

  // First, so that no check below factors a degree larger than any world (a 16-digit prime sp would take days).
  const world = dp * pp * tp * sp;
  if (world > MAX_WORLD) {
    throw new SpecError('world-too-large', `dp·pp·tp·sp = ${world} ranks exceeds the limit of ${MAX_WORLD}; lower a degree`);
  }
  if (spImpl === 'megatron' && sp > 1) {
    throw new SpecError(
      'megatron-with-sp',
      `sp_impl=megatron splits the sequence over the tp ranks, so it takes no sp key; write 'tp=${tp * sp},sp_impl=megatron' or choose sp_impl=ulysses|ring|usp`,
    );
  }
  let ulysses: number;
  if (spImpl === 'usp') {
    if (ulyssesGiven === undefined) {
      throw new SpecError('usp-needs-ulysses', `sp_impl=usp needs ulysses=U with U dividing sp=${sp} (the ring degree is sp/U); e.g. 'sp=${sp},sp_impl=usp,ulysses=${smallestProperDivisor(sp)}'`);
    }
    if (sp % ulyssesGiven !== 0) {
      throw new SpecError('ulysses-divides', `ulysses=${ulyssesGiven} does not divide sp=${sp}; use ulysses ∈ {${divisorList(sp)}}`);
    }
    ulysses = ulyssesGiven;
  } else {
    if (ulyssesGiven !== undefined) {
      throw new SpecError('ulysses-without-usp', `ulysses=${ulyssesGiven} is only meaningful with sp_impl=usp; add sp_impl=usp or drop ulysses`);
    }
    ulysses = spImpl === 'ulysses' ? sp : 1;
  }

  const chunksGiven = values.get('ring_chunks')?.toLowerCase();
  if (chunksGiven !== undefined && chunksGiven !== 'zigzag' && chunksGiven !== 'naive') {
    throw new SpecError('bad-ring-chunks', `unknown ring_chunks '${shown(values.get('ring_chunks') ?? '')}'; use zigzag or naive`);
  }
  if (chunksGiven !== undefined && spImpl !== 'ring' && spImpl !== 'usp') {
    throw new SpecError('ring-chunks-without-ring', `ring_chunks only applies to sp_impl=ring or usp; add sp_impl=ring or drop ring_chunks`);
  }
  const ringChunks = (chunksGiven ?? 'zigzag') as ParallelSpec['ringChunks'];

  const stageRanks = dp * tp * sp;
  if (stageRanks % ep !== 0) {
    throw new SpecError(
      'ep-divides',
      `ep=${ep} does not divide dp·tp·sp = ${stageRanks} (experts are sharded over the ranks of one stage); use ep ∈ {${divisorList(stageRanks)}}`,
    );
  }
  const epTp = parseEpTp(values.get('ep_tp'), tp, ep);
  return { dp, pp, tp, sp, ep, micro, spImpl, ulysses, ringChunks, epTp, world };
}

/**
 * Canonical form: keys in the order dp, pp, tp, sp, ep, micro, sp_impl,
 * ulysses, ring_chunks, ep_tp, defaults left out; `single` when nothing differs from the default.
 * parseSpec(formatSpec(s)) deep-equals s.
 */
export function formatSpec(spec: ParallelSpec): string {
  const parts: string[] = [];
  for (const axis of ['dp', 'pp', 'tp', 'sp', 'ep'] as const) if (spec[axis] !== 1) parts.push(`${axis}=${spec[axis]}`);
  if (spec.micro !== spec.pp) parts.push(`micro=${spec.micro}`);
  if (spec.spImpl !== 'ulysses') parts.push(`sp_impl=${spec.spImpl}`);
  if (spec.spImpl === 'usp') parts.push(`ulysses=${spec.ulysses}`);
  if (spec.ringChunks === 'naive') parts.push('ring_chunks=naive');
  if (spec.epTp === 'allreduce') parts.push('ep_tp=allreduce');
  return parts.length === 0 ? 'single' : parts.join(',');
}

/** Axes with degree > 1, in canonical order (megatron SP counts as the sp axis). */
export function usedAxes(spec: ParallelSpec): Axis[] {
  const used = (['dp', 'pp', 'tp', 'sp', 'ep'] as const).filter((a) => spec[a] > 1);
  if (spec.spImpl === 'megatron' && spec.tp > 1 && !used.includes('sp')) used.splice(used.indexOf('tp') + 1, 0, 'sp');
  return used;
}

function parseDegree(key: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new SpecError('bad-number', `${key}=${shown(value)} is not a whole number; write e.g. ${key}=2`);
  }
  const n = Number(value);
  if (n === 0) throw new SpecError('zero', `${key}=0 is not a degree; degrees start at 1 (use ${key}=1 or drop the key)`);
  if (!Number.isSafeInteger(n)) throw new SpecError('bad-number', `${key}=${shown(value)} is too large; world is at most ${MAX_WORLD} ranks`);
  return n;
}

function parseSpImpl(value: string | undefined): SpImpl {
  if (value === undefined) return 'ulysses';
  const v = value.toLowerCase();
  if (!(SP_IMPLS as readonly string[]).includes(v)) {
    throw new SpecError('bad-sp-impl', `unknown sp_impl '${shown(value)}'; use ${SP_IMPLS.join(', ')}`);
  }
  return v as SpImpl;
}

/** ep_tp: only meaningful where the tp ranks of an ep group could split the work either way (tp = ep > 1). */
function parseEpTp(value: string | undefined, tp: number, ep: number): ParallelSpec['epTp'] {
  if (value === undefined) return 'share';
  const v = value.toLowerCase();
  if (v !== 'share' && v !== 'allreduce') throw new SpecError('bad-ep-tp', `unknown ep_tp '${shown(value)}'; use share or allreduce`);
  if (v === 'allreduce' && (ep < 2 || tp !== ep)) {
    throw new SpecError('ep-tp-needs-tp-eq-ep', `ep_tp=allreduce runs each rank's experts on all tokens and all-reduces over the tp group, so it needs tp = ep > 1 (got tp=${tp}, ep=${ep}); e.g. 'tp=2,ep=2,ep_tp=allreduce', or drop ep_tp`);
  }
  return v;
}

/**
 * Text the user wrote, inside a one-line message: line breaks and other
 * control characters escaped (written as \n, \u0000), anything past 80 characters cut.
 */
function shown(text: string): string {
  const s = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) =>
    ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : ch === '\t' ? '\\t' : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function divisorList(n: number): string {
  return divisors(n).join(',');
}

function smallestProperDivisor(n: number): number {
  for (let d = 2; d < n; d++) if (n % d === 0) return d;
  return n;
}
