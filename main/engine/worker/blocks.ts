/**
 * From a rank's pieces to what its executor runs: ONNX segments, cut where the
 * plan communicates, and blocks — the parts of a layer whose computation is
 * interleaved with collectives (sequence-parallel attention, MoE experts).
 *
 * Each parallel feature registers a BlockFactory; the first factory that
 * claims a piece turns it into a block, and the pieces between blocks are
 * grouped into segments as before.
 */
import { buildSegment, groupPieces } from '../graph/segments';
import type { Piece } from '../graph/segments';
import type { RopeTables } from '../graph/layers';
import type { Block, ExecItem } from '../runtime/executor';
import type { SessionConfig } from '../runtime/ort';
import type { Communicator } from '../comm/communicator';
import type { ModelConfig } from '../model/types';
import type { RankInit } from './protocol';

/** Everything a block may need to build itself. */
export interface BlockEnv {
  init: RankInit;
  config: ModelConfig;
  rope: RopeTables;
  session: SessionConfig;
  /** a communicator of one of this rank's groups by link name ('tp', 'sp', 'ulysses', 'ring', 'ep', 'pp'), or null */
  group(link: keyof RankInit['links']): Communicator | null;
}

export type BlockFactory = (piece: Piece, env: BlockEnv, index: number, pieces: Piece[]) => Promise<Block | null>;

const factories: BlockFactory[] = [];

/** Register a factory (at module load of the feature that provides it). */
export function registerBlockFactory(f: BlockFactory): void {
  factories.push(f);
}

/**
 * Build the executor's items: each piece a factory claims becomes a block,
 * the runs of pieces between blocks become segments cut by `cut`.
 */
export async function buildItems(pieces: Piece[], cut: (p: Piece, next: Piece | undefined) => boolean, env: BlockEnv): Promise<ExecItem[]> {
  const items: ExecItem[] = [];
  let run: Piece[] = [];
  const flush = () => {
    if (run.length > 0) items.push(...groupPieces(run, cut).map((s) => buildSegment(s, env.rope)));
    run = [];
  };
  for (let i = 0; i < pieces.length; i++) {
    let block: Block | null = null;
    for (const f of factories) {
      block = await f(pieces[i], env, i, pieces);
      if (block) break;
    }
    if (block) {
      flush();
      items.push(block);
    } else {
      run.push(pieces[i]);
    }
  }
  flush();
  return items;
}
