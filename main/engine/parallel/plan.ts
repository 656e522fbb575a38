/**
 * From a validated spec and a model to what each rank holds: its layer range,
 * whether it embeds / owns the LM head, its TP coordinate, and whether it is
 * the rank that samples. Pure: the Cluster turns these into processes.
 */
import type { ModelConfig } from '../model/types';
import type { ShardPlan } from '../runtime/shard';
import type { Mesh } from './mesh';

export interface RankRole {
  rank: number;
  plan: ShardPlan;
  /** last pipeline stage, tp rank 0 of its replica: samples and answers with tokens */
  sampler: boolean;
  /** which data-parallel replica the rank serves */
  replica: number;
}

export function rankRoles(mesh: Mesh, config: ModelConfig): RankRole[] {
  return mesh.ranks.map((p) => ({
    rank: p.rank,
    plan: {
      layers: mesh.layerRange(p.coord.pp, config.layers),
      embed: p.isFirstStage,
      head: p.isLastStage,
      tp: { rank: p.coord.tp, size: mesh.spec.tp },
      // expert parallelism: this rank's expert shard in its ep group (parallel/expert.ts)
      // (PARALAB_EP_TP=allreduce, an experiment knob for tp=N,ep=N: experts on all tokens + all-reduce instead of token shares)
      ...(mesh.spec.ep > 1 ? { ep: { rank: p.epRank, size: mesh.spec.ep, ...(epTpTokens() === 'allreduce' && mesh.spec.tp === mesh.spec.ep ? { tpTokens: 'allreduce' as const } : {}) } } : {}),
      ...(mesh.spec.sp > 1 || mesh.spec.spImpl === 'megatron'
        ? {
            sp: {
              rank: p.coord.sp,
              size: mesh.spec.sp,
              impl: mesh.spec.spImpl,
              ulysses: mesh.spec.ulysses,
              // Ulysses gathers every token for its heads, so causal balance needs no zigzag.
              chunking: mesh.spec.spImpl === 'ulysses' || mesh.spec.ringChunks === 'naive' ? ('contiguous' as const) : ('zigzag' as const),
            },
          }
        : {}),
    },
    sampler: p.isLastStage && p.coord.tp === 0 && p.coord.sp === 0,
    replica: p.coord.dp,
  }));
}

/** How tp ranks of one ep group split the MoE work (parallel/expert.ts): token shares (default) or all-reduce. */
function epTpTokens(): 'share' | 'allreduce' {
  return process.env.PARALAB_EP_TP === 'allreduce' ? 'allreduce' : 'share';
}
