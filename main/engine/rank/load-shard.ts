/**
 * A rank's shard of the weights, read straight from the model files and
 * turned into graph pieces: the pipeline stage's layers (plan.layers), the
 * tensor-parallel slices of each (parallel/tp/shard.ts), the expert-parallel
 * share of the experts (parallel/ep/weights.ts), the embedding on the first
 * stage and the LM head on the last. Weights never travel between processes.
 */
import type { ModelConfig } from '../model/types';
import type { WeightReader } from '../model/weights';
import type { Piece } from '../graph/segments';
import type { ShardPlan } from '../parallel/plan';
import { shardLayout } from '../parallel/tp/layout';
import { readAttention, readEmbedding, readHead, readMlp } from '../parallel/tp/shard';
import { loadMoePiece } from '../parallel/ep/weights';

/** Build the pieces (embedding, layers, head) this rank runs, reading only its slices. */
export function loadShardPieces(c: ModelConfig, w: WeightReader, plan: ShardPlan): Piece[] {
  const L = shardLayout(c, plan.tp);
  const tpOn = plan.tp.size > 1;
  if (c.qkNorm && c.qkNormScope === 'projection' && tpOn) {
    throw new Error(`${c.hfArchitecture}: its q/k RMSNorm spans the whole projection, so tensor parallelism would need the norm's statistics from every tp rank; use tp=1 (dp, pp, sp, ep run it)`);
  }
  const pieces: Piece[] = [];
  if (plan.embed) pieces.push(readEmbedding(c, w, L, tpOn));
  for (let l = plan.layers[0]; l < plan.layers[1]; l++) {
    // The first layer of a stage starts from a single residual tensor (the
    // embedding, or the previous stage's folded stream).
    pieces.push(readAttention(c, w, l, L, l === plan.layers[0]));
    // Router + this rank's experts (an ep shard, or tp slices of all), or the dense MLP.
    pieces.push(c.moe ? loadMoePiece(c, w, l, plan) : readMlp(c, w, l, L));
  }
  // End of a pipeline stage: fold the last sublayer output into the residual, so one tensor crosses.
  if (!plan.head) pieces.push({ kind: 'sum', hidden: c.hidden });
  else pieces.push(readHead(c, w, L, tpOn));
  return pieces;
}
