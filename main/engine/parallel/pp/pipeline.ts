/**
 * Pipeline parallelism on one rank (GPipe's schedule, Huang et al. 2019):
 * a step's batch is cut into micro-batches (contiguous sequence ranges,
 * splitEven); each stage receives a micro-batch's stream from the previous
 * stage, runs its layers and sends the result on, B_m·S·H floats per
 * boundary and micro-batch (pp/comm.ts). Stages work on different
 * micro-batches at once, which is what fills the pipeline; time blocked in
 * recv is the bubble. The loop itself is rank/stage.ts.
 */
import type { Communicator } from '../../comm/communicator';
import type { BatchState } from '../../runtime/batch';
import type { Executor } from '../../runtime/executor';
import { splitEven } from '../split';

export interface MicroBatches {
  states: BatchState[];
  /** sequence range [start, end) of each micro-batch */
  ranges: [number, number][];
}

/** A batch of B sequences as min(micro, B) micro-batches, each with its own state. */
export function microBatches(exec: Pick<Executor, 'newBatch'>, B: number, micro: number): MicroBatches {
  const m = Math.max(1, Math.min(micro, B));
  const ranges = Array.from({ length: m }, (_, i) => splitEven(B, m, i));
  return { states: ranges.map(([a, b]) => exec.newBatch(b - a)), ranges };
}

/** The stream of one micro-batch from the previous stage; checks its size. */
export async function recvFromPrevious(pp: Communicator, prev: number, floats: number, what: string): Promise<Float32Array> {
  const x = await pp.recv(prev);
  if (x.length !== floats) throw new Error(`stage received ${x.length} floats, expected ${what}`);
  return x;
}

/** The stream of one micro-batch on to the next stage. */
export function sendToNext(pp: Communicator, next: number, x: Float32Array): Promise<void> {
  return pp.send(next, x);
}
