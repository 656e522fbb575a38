/**
 * The Lab view's mesh builder as pure data: degrees and flavour in, the spec
 * string the engine parses out (`dp=2,tp=2`, `sp=4,sp_impl=usp,ulysses=2`,
 * `tp=2,sp_impl=megatron`, `single`). The engine stays the judge of whether a
 * spec fits a model (checkSpec); this only writes the string and a local
 * world count for the form.
 */
export type SpFlavour = 'ulysses' | 'ring' | 'usp' | 'megatron';

export interface MeshForm {
  dp: number;
  pp: number;
  tp: number;
  sp: number;
  ep: number;
  /** pipeline micro-batches (0 = the engine's default, pp) */
  micro: number;
  spImpl: SpFlavour;
  /** Ulysses degree inside sp (usp only) */
  ulysses: number;
}

export const DEFAULT_FORM: MeshForm = { dp: 1, pp: 1, tp: 2, sp: 1, ep: 1, micro: 0, spImpl: 'ulysses', ulysses: 1 };

const pos = (n: number) => (Number.isInteger(n) && n >= 1 ? n : 1);

/** The canonical-order spec string for a form (megatron rides on tp and has no sp key). */
export function specString(f: MeshForm): string {
  const parts: string[] = [];
  if (pos(f.dp) > 1) parts.push(`dp=${pos(f.dp)}`);
  if (pos(f.pp) > 1) parts.push(`pp=${pos(f.pp)}`);
  if (pos(f.tp) > 1) parts.push(`tp=${pos(f.tp)}`);
  if (f.spImpl !== 'megatron' && pos(f.sp) > 1) parts.push(`sp=${pos(f.sp)}`);
  if (pos(f.ep) > 1) parts.push(`ep=${pos(f.ep)}`);
  if (pos(f.pp) > 1 && pos(f.micro) > 1 && f.micro) parts.push(`micro=${pos(f.micro)}`);
  if (f.spImpl === 'megatron') parts.push('sp_impl=megatron');
  else if (pos(f.sp) > 1 && f.spImpl !== 'ulysses') {
    parts.push(`sp_impl=${f.spImpl}`);
    if (f.spImpl === 'usp') parts.push(`ulysses=${pos(f.ulysses)}`);
  }
  return parts.length ? parts.join(',') : 'single';
}

/** Ranks the form asks for: dp·pp·tp·sp (ep reuses ranks). */
export function worldOf(f: MeshForm): number {
  return pos(f.dp) * pos(f.pp) * pos(f.tp) * (f.spImpl === 'megatron' ? 1 : pos(f.sp));
}

/** A spec string back into a form (for "edit this queued spec"); unknown keys are ignored. */
export function parseForm(spec: string): MeshForm {
  const f: MeshForm = { ...DEFAULT_FORM, tp: 1 };
  if (spec.trim() === 'single') return f;
  for (const item of spec.split(',')) {
    const [k, v] = item.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'sp_impl' && (v === 'ulysses' || v === 'ring' || v === 'usp' || v === 'megatron')) f.spImpl = v;
    else if (k === 'dp' || k === 'pp' || k === 'tp' || k === 'sp' || k === 'ep' || k === 'micro' || k === 'ulysses') f[k] = pos(Number(v));
  }
  return f;
}

/** The axis a one-axis spec scales (for scaling curves): 'single', 'dp', …, or 'hybrid'. */
export function axisOf(degrees: { dp: number; pp: number; tp: number; sp: number; ep: number }): { axis: string; degree: number } {
  const moved = (['dp', 'pp', 'tp', 'sp', 'ep'] as const).filter((k) => degrees[k] > 1);
  if (moved.length === 0) return { axis: 'single', degree: 1 };
  if (moved.length === 1) return { axis: moved[0], degree: degrees[moved[0]] };
  return { axis: 'hybrid', degree: degrees.dp * degrees.pp * degrees.tp * degrees.sp };
}

/**
 * Does a model fit when its weights are split over `devices` (TP/PP), each
 * with `memPerDevice` bytes? Weights ÷ devices, plus the KV cache of `seq`
 * tokens (batch 1) ÷ devices, plus 20% for activations and the runtime.
 * A rough planning number, labelled as an estimate in the UI.
 */
export function fitEstimate(
  m: { sizeBytes: number; layers: number; hidden: number; heads: number; kvHeads: number; dtype: string },
  devices: number,
  memPerDevice: number,
  seq = 4096,
): { perDevice: number; fits: boolean } {
  const bytes = /16/.test(m.dtype) ? 2 : 4;
  const headDim = m.heads > 0 ? m.hidden / m.heads : 0;
  const kv = 2 * m.layers * m.kvHeads * headDim * seq * bytes;
  const perDevice = ((m.sizeBytes + kv) / devices) * 1.2;
  return { perDevice, fits: perDevice <= memPerDevice };
}
