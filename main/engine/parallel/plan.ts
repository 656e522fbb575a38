/**
 * From a validated spec and a model to what each rank holds (its ShardPlan):
 * its layer range, whether it embeds / owns the LM head, its TP coordinate,
 * its SP and EP places, and whether it is the rank that samples. Pure: the
 * host turns these into rank processes (host/launch.ts), each rank loads the
 * weights its plan names (rank/load-shard.ts).
 */
import type { ModelConfig } from '../model/types';
import type { Range } from './split';
import type { Chunking } from './sp/layout';
import type { Mesh } from './mesh';

/** What a rank holds: a half-open layer range [start, end), ends of the model, a TP coordinate. */
export interface ShardPlan {
  layers: Range;
  embed: boolean;
  head: boolean;
  tp: { rank: number; size: number };
  /** sequence parallelism: this rank's index in its sp group, and how the group splits attention */
  sp?: { rank: number; size: number; impl: 'ulysses' | 'ring' | 'usp' | 'megatron'; ulysses: number; chunking: Chunking };
  /** expert parallelism: this rank's index in its ep group (which expert shard it holds) and how its tp ranks split the work (spec key ep_tp) */
  ep?: { rank: number; size: number; tpTokens?: 'share' | 'allreduce' };
}

export interface RankRole {
  rank: number;
  plan: ShardPlan;
  /** last pipeline stage, tp rank 0, sp rank 0 of its replica: samples and answers with tokens */
  sampler: boolean;
  /** which data-parallel replica the rank serves */
  replica: number;
}

export function rankRoles(mesh: Mesh, config: ModelConfig): RankRole[] {
  const { spec } = mesh;
  return mesh.ranks.map((p) => ({
    rank: p.rank,
    plan: {
      layers: mesh.layerRange(p.coord.pp, config.layers),
      embed: p.isFirstStage,
      head: p.isLastStage,
      tp: { rank: p.coord.tp, size: spec.tp },
      // expert parallelism: this rank's expert shard in its ep group (parallel/ep/plan.ts)
      ...(spec.ep > 1 ? { ep: { rank: p.epRank, size: spec.ep, ...(spec.epTp === 'allreduce' ? { tpTokens: 'allreduce' as const } : {}) } } : {}),
      ...(spec.sp > 1 || spec.spImpl === 'megatron'
        ? {
            sp: {
              rank: p.coord.sp,
              size: spec.sp,
              impl: spec.spImpl,
              ulysses: spec.ulysses,
              // Ulysses gathers every token for its heads, so causal balance needs no zigzag.
              chunking: spec.spImpl === 'ulysses' || spec.ringChunks === 'naive' ? ('contiguous' as const) : ('zigzag' as const),
            },
          }
        : {}),
    },
    sampler: p.isLastStage && p.coord.tp === 0 && p.coord.sp === 0,
    replica: p.coord.dp,
  }));
}
