/**
 * What flows through a rank's step: the residual stream between segments
 * (x, delta: graph/layers.ts explains the two-tensor residual), a step's
 * input and output, and the timings of its spans.
 */

export interface StreamTensors {
  x: Float32Array; // (B,S,H)
  delta: Float32Array | null; // (B,S,H)
}

export type StepInput = { ids: BigInt64Array } | { stream: StreamTensors };

export type StepOutput = { logits: Float32Array } | { stream: StreamTensors };

export interface SegmentTiming {
  segment: string;
  start: number; // performance.now() ms
  ms: number;
  /** what the span was: a session run (default), a collective, or waiting for the previous pipeline stage */
  cat?: 'compute' | 'comm' | 'bubble';
}

/** Append the span [start, now] (performance.now() ms) to a step's timings, when they are kept. */
export function recordSpan(timings: SegmentTiming[] | undefined, segment: string, start: number, cat: SegmentTiming['cat'] = 'compute'): void {
  timings?.push({ segment, start, ms: performance.now() - start, cat });
}
