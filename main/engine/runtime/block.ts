/**
 * Blocks: the parts of a layer whose computation is interleaved with
 * collectives (sequence-parallel attention: all-to-all / ring passes between
 * its graphs; Megatron-SP: gather / scatter around a sublayer body; MoE:
 * dispatch and combine around the experts). A block maps the residual
 * stream (x, delta) to the next, runs its own sessions and keeps its own
 * per-batch state in `BatchState.blocks`. Each strategy that needs one
 * provides a BlockFactory in its own folder; rank/blocks.ts lists them.
 */
import type { ort } from './ort';
import type { SessionConfig } from './ort';
import type { BatchState } from './batch';
import type { SegmentTiming, StreamTensors } from './stream';
import type { BuiltSegment } from '../graph/segments';
import type { Piece } from '../graph/segments';
import type { RopeTables } from '../graph/layers';
import type { Communicator } from '../comm/communicator';
import type { ModelConfig } from '../model/types';
import type { ShardPlan } from '../parallel/plan';

/** Per-step counters blocks report back in the rank's step result. */
export interface StepStats {
  /** MoE: per layer, rows this rank routed to each expert (its share, real rows only) */
  routed: Record<number, number[]>;
}

/** What a block sees of the step it is part of. */
export interface BlockStep {
  /** new tokens per sequence on this rank in this step (a shard of the step's tokens under SP) */
  S: number;
  /** plan-specific description of the step (e.g. which sequence positions this rank holds) */
  plan: unknown;
  timings?: SegmentTiming[];
  /** where blocks add their counters for this step */
  stats?: StepStats;
}

/** A step of the executor made of several sessions with collectives between them. */
export interface Block {
  readonly kind: 'block';
  readonly name: string;
  readonly weightBytes: number;
  /** attention layers whose cache the block keeps (for reports) */
  readonly layers: number[];
  run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors>;
  release(): Promise<void>;
}

export type ExecItem = BuiltSegment | Block;

export function isBlock(item: ExecItem): item is Block {
  return (item as Block).kind === 'block';
}

/** Communicator link names a rank may have (its groups in the mesh). */
export type LinkName = 'tp' | 'pp' | 'sp' | 'ulysses' | 'ring' | 'ep';

/** Everything a block may need to build itself. */
export interface BlockEnv {
  rank: number;
  plan: ShardPlan;
  config: ModelConfig;
  rope: RopeTables;
  session: SessionConfig;
  /** a communicator of one of this rank's groups, or null when the rank has none */
  group(link: LinkName): Communicator | null;
  /** sessions shared by several blocks of this rank (a weight-free graph serves every layer), by key */
  shared: Map<string, Promise<ort.InferenceSession>>;
}

/** Claims a piece (returns its block) or passes (null). */
export type BlockFactory = (piece: Piece, env: BlockEnv, index: number, pieces: Piece[]) => Promise<Block | null>;
