/**
 * From a rank's pieces to what its executor runs: ONNX segments, cut where
 * the plan communicates, and blocks (runtime/block.ts) — the parts of a layer
 * whose computation is interleaved with collectives. The strategies that
 * need blocks are listed here, in the order they are asked; the first factory
 * that claims a piece turns it into a block, and the pieces between blocks
 * are grouped into segments.
 */
import { buildSegment, groupPieces } from '../graph/segments';
import type { Piece } from '../graph/segments';
import type { Block, BlockEnv, BlockFactory, ExecItem } from '../runtime/block';
import { spAttentionBlocks } from '../parallel/sp/attention';
import { megatronBlocks } from '../parallel/sp/megatron/block';
import { moeBlocks } from '../parallel/ep/block';

/** Every block a plan can need: SP attention (Ulysses / ring / USP), Megatron-SP sublayers, MoE experts (EP). */
export const BLOCK_FACTORIES: readonly BlockFactory[] = [spAttentionBlocks, megatronBlocks, moeBlocks];

/**
 * Build the executor's items: each piece a factory claims becomes a block,
 * the runs of pieces between blocks become segments cut by `cut`.
 */
export async function buildItems(pieces: Piece[], cut: (p: Piece, next: Piece | undefined) => boolean, env: BlockEnv, factories: readonly BlockFactory[] = BLOCK_FACTORIES): Promise<ExecItem[]> {
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
