/**
 * Segments: the ONNX graphs one rank runs, each a run of consecutive pieces
 * (embedding, attention l, MLP l, head) between two places where a collective
 * must happen. One `session.run` per segment.
 *
 * A segment's interface:
 *   inputs  ids (B,S) int64                 when it starts with the embedding
 *           x, delta (B,S,H)                otherwise (delta absent before the first sublayer)
 *           past_k.l, past_v.l (B,kv,P,D)   for each attention layer l inside
 *           seqlens_k (B) int32, total_len () int32   when it holds attention
 *   outputs logits (B,V)                    when it ends with the head
 *           x, delta (B,S,H)                otherwise
 *           present_k.l, present_v.l (B,kv,P+S,D)
 * Cutting after every piece gives ~2 runs per layer (where TP all-reduces);
 * cutting nowhere gives the monolithic one-graph model used as a ceiling.
 */
import { GraphBuilder } from './onnx';
import { attnKernel, emitAttention, emitEmbedding, emitHead, emitMlp } from './layers';
import type { AttnKernel } from './layers';
import type { AttnShape, AttnWeights, HeadWeights, MlpShape, MlpWeights, RopeTables, StreamIn } from './layers';
import type { MoeShape, MoeWeights } from './moe';

export type Piece =
  | { kind: 'embed'; table: Float32Array; rows: number; hidden: number; shard: [number, number] | null }
  | { kind: 'attn'; layer: number; w: AttnWeights; s: AttnShape }
  | { kind: 'mlp'; layer: number; w: MlpWeights; s: MlpShape }
  /** a Mixture-of-Experts sublayer: always claimed by the MoE block (parallel/ep/block.ts), never emitted into a segment */
  | { kind: 'moe'; layer: number; w: MoeWeights; s: MoeShape }
  | { kind: 'head'; w: HeadWeights; hidden: number; vocab: number; eps: number }
  /** end of a pipeline stage: fold the last sublayer output into the residual, so one tensor crosses to the next stage */
  | { kind: 'sum'; hidden: number };

export interface SegmentSpec {
  name: string;
  pieces: Piece[];
}

export interface BuiltSegment {
  name: string;
  bytes: Uint8Array;
  weightBytes: number;
  /** attention layers inside, in order (their KV caches are fed and returned) */
  layers: number[];
  takesIds: boolean;
  takesDelta: boolean;
  givesLogits: boolean;
  givesDelta: boolean;
  givesX: boolean;
  /**
   * Which output is a partial sum over the TP group (the Megatron g operator
   * goes after this segment): a sublayer's 'delta', the vocab-parallel
   * embedding's 'x', or null.
   */
  partial: 'delta' | 'x' | null;
  hasAttention: boolean;
  /** which attention inputs the segment takes (null: no attention) */
  kernel: AttnKernel | null;
  kvHeads: number;
  headDim: number;
}

export const pastK = (l: number) => `past_k.${l}`;
export const pastV = (l: number) => `past_v.${l}`;
export const presentK = (l: number) => `present_k.${l}`;
export const presentV = (l: number) => `present_v.${l}`;

export function buildSegment(spec: SegmentSpec, rope: RopeTables): BuiltSegment {
  const g = new GraphBuilder(spec.name);
  const first = spec.pieces[0];
  const last = spec.pieces[spec.pieces.length - 1];
  const attn = spec.pieces.filter((p): p is Extract<Piece, { kind: 'attn' }> => p.kind === 'attn');
  const hidden = pieceHidden(first);

  let stream: StreamIn;
  let takesDelta = false;
  if (first.kind === 'embed') {
    const ids = g.input('ids', 'int64', ['batch', 'seq']);
    stream = { x: emitEmbedding(g, 'embed', first.table, first.rows, first.hidden, ids, first.shard), delta: null };
  } else {
    takesDelta = !(first.kind === 'attn' && first.s.first);
    stream = { x: g.input('x', 'float32', ['batch', 'seq', hidden]), delta: takesDelta ? g.input('delta', 'float32', ['batch', 'seq', hidden]) : null };
  }

  const kernel = attn.length > 0 ? attnKernel(attn[0].s.headDim) : null;
  const attnIo = kernel ? attentionInputs(g, kernel, rope) : null;

  let logits = '';
  for (const piece of spec.pieces) {
    switch (piece.kind) {
      case 'embed':
        break;
      case 'attn': {
        const { kvHeads, headDim } = piece.s;
        const l = piece.layer;
        const pk = g.input(pastK(l), 'float32', ['batch', kvHeads, 'past', headDim]);
        const pv = g.input(pastV(l), 'float32', ['batch', kvHeads, 'past', headDim]);
        const r = emitAttention(g, `l${l}.attn`, piece.w, piece.s, { ...stream, pastK: pk, pastV: pv, ...attnIo! });
        g.node('Identity', [r.presentK], [presentK(l)]);
        g.node('Identity', [r.presentV], [presentV(l)]);
        g.output(presentK(l), 'float32', ['batch', kvHeads, 'total', headDim]);
        g.output(presentV(l), 'float32', ['batch', kvHeads, 'total', headDim]);
        stream = { x: r.x, delta: r.out };
        break;
      }
      case 'mlp': {
        const r = emitMlp(g, `l${piece.layer}.mlp`, piece.w, piece.s, stream);
        stream = { x: r.x, delta: r.out };
        break;
      }
      case 'head':
        logits = emitHead(g, 'head', piece.w, piece.hidden, piece.vocab, piece.eps, stream);
        break;
      case 'sum':
        if (stream.delta !== null) stream = { x: g.op('Add', [stream.x, stream.delta]), delta: null };
        break;
    }
  }

  if (last.kind === 'head') {
    g.node('Identity', [logits], ['logits']);
    g.output('logits', 'float32', ['batch', last.vocab]);
  } else {
    g.node('Identity', [stream.x], ['x_out']);
    g.output('x_out', 'float32', ['batch', 'seq', hidden]);
    // A segment that is only the embedding has no sublayer output yet.
    if (stream.delta !== null) {
      g.node('Identity', [stream.delta], ['delta_out']);
      g.output('delta_out', 'float32', ['batch', 'seq', hidden]);
    }
  }

  return {
    name: spec.name,
    bytes: g.toBytes(),
    weightBytes: g.weightBytes,
    layers: attn.map((p) => p.layer),
    takesIds: first.kind === 'embed',
    takesDelta,
    givesLogits: last.kind === 'head',
    givesDelta: last.kind === 'attn' || last.kind === 'mlp',
    givesX: last.kind !== 'head',
    partial: last.kind === 'attn' || last.kind === 'mlp' ? 'delta' : last.kind === 'embed' && last.shard ? 'x' : null,
    hasAttention: attn.length > 0,
    kernel,
    kvHeads: attn[0]?.s.kvHeads ?? 0,
    headDim: attn[0]?.s.headDim ?? 0,
  };
}

/**
 * The step inputs a segment with attention declares (once, shared by its
 * layers) and the RoPE tables it carries: GQA takes lengths; the standard-op
 * kernel takes positions, the causal mask and a per-row mask (ragged batches).
 */
function attentionInputs(g: GraphBuilder, kernel: AttnKernel, rope: RopeTables) {
  const gqa = kernel === 'gqa';
  return {
    seqlensK: gqa ? g.input('seqlens_k', 'int32', ['batch']) : '',
    totalLen: gqa ? g.input('total_len', 'int32', []) : '',
    positions: gqa ? '' : g.input('positions', 'int64', ['batch', 'seq']),
    mask: gqa ? '' : g.input('mask', 'float32', ['seq', 'total']),
    // (B,1,S,T) per-row mask of a ragged batch (continuous batching); (1,1,1,1) zeros for a plain one
    rowMask: gqa ? '' : g.input('row_mask', 'float32', ['row_b', 1, 'row_s', 'row_t']),
    cos: g.init('rope.cos', rope.cos, [rope.maxSeq, rope.cos.length / rope.maxSeq]),
    sin: g.init('rope.sin', rope.sin, [rope.maxSeq, rope.sin.length / rope.maxSeq]),
  };
}

function pieceHidden(p: Piece): number {
  switch (p.kind) {
    case 'embed':
      return p.hidden;
    case 'attn':
    case 'mlp':
    case 'moe':
      return p.s.hidden;
    case 'head':
    case 'sum':
      return p.hidden;
  }
}

/**
 * Group pieces into segments. `cut` decides, after each piece, whether a
 * segment boundary (a collective, or a forced per-sublayer cut) follows.
 */
export function groupPieces(pieces: Piece[], cut: (p: Piece, next: Piece | undefined) => boolean): SegmentSpec[] {
  const out: SegmentSpec[] = [];
  let cur: Piece[] = [];
  pieces.forEach((p, i) => {
    cur.push(p);
    const next = pieces[i + 1];
    if (!next || cut(p, next)) {
      out.push({ name: cur.map(pieceName).join('+'), pieces: cur });
      cur = [];
    }
  });
  return out;
}

export function pieceName(p: Piece): string {
  return p.kind === 'attn' || p.kind === 'mlp' ? `${p.kind}${p.layer}` : p.kind;
}
