/**
 * ONNX graphs of a Mixture-of-Experts sublayer (Mixtral block_sparse_moe,
 * Qwen2-MoE / Qwen3-MoE, OLMoE), split in the two parts that expert
 * parallelism puts a collective between:
 *
 *   router   rows h (N,H) of the residual stream (already x + delta) →
 *            normed = RMSNorm(h)·w_post
 *            p = softmax(normed·W_rᵀ) over all E experts
 *            (w, ids) = TopK(p, k)            (ties → lowest id, as the reference)
 *            w ← w / Σw                       when norm_topk_prob (Mixtral: always)
 *            shared = sigmoid(normed·w_sg)·SwiGLU_shared(normed)   (Qwen2-MoE)
 *   expert   rows (n,H) routed to one expert → down(silu(gate(r)) ⊙ up(r))
 *
 * The weighted combine Σ_j w_j·expert_{id_j}(row) (+ shared) happens on the
 * token's home rank in the block (parallel/ep/block.ts), after the rows came
 * back from the ranks that own the experts. Weights arrive transposed to
 * (in, out) like the dense pieces (parallel/ep/weights.ts), so every
 * projection is a plain MatMul; the SwiGLU node sequence is the one emitMlp
 * uses. These graphs live here, not under parallel/ep/, because every MoE
 * model runs them, with or without expert parallelism.
 *
 * The piece kind 'moe' (graph/segments.ts) is always claimed by the MoE block
 * factory (parallel/ep/block.ts) and never emitted into a segment.
 */
import { GraphBuilder } from './onnx';

export interface ExpertWeights {
  /** global expert id */
  id: number;
  wgu: Float32Array; // (H, 2F)  columns: [gate | up]
  wdown: Float32Array; // (F, H)
}

export interface SharedExpertWeights {
  wgu: Float32Array; // (H, 2Fs)
  wdown: Float32Array; // (Fs, H)
  gate: Float32Array; // (H)  shared_expert_gate, one output
}

export interface MoeWeights {
  postNorm: Float32Array; // (H)
  router: Float32Array; // (H, E)
  /** the experts this rank holds (all of them without EP; one ep shard with it), ascending ids */
  experts: ExpertWeights[];
  shared: SharedExpertWeights | null;
}

export interface MoeShape {
  hidden: number;
  experts: number;
  topK: number;
  /** local width of one expert (the whole expert under EP; a tp slice with tp>1, ep=1) */
  ffn: number;
  /** local width of the shared expert (0: none) */
  sharedFfn: number;
  normTopK: boolean;
  eps: number;
}

/** SwiGLU on rows: the same node sequence as layers.ts emitMlp, without its addNorm. */
function swiglu(g: GraphBuilder, p: string, rows: string, wgu: Float32Array, wdown: Float32Array, hidden: number, ffn: number): string {
  const gu = g.op('MatMul', [rows, g.init(`${p}.wgu`, wgu, [hidden, 2 * ffn])]);
  const [gate, up] = g.node('Split', [gu, g.ints([ffn, ffn])], 2, { axis: -1 });
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  const act = g.op('Mul', [silu, up]);
  return g.op('MatMul', [act, g.init(`${p}.wdown`, wdown, [ffn, hidden])]);
}

/**
 * Router graph: input `h` (N,H); outputs `normed` (N,H), `weights` (N,k)
 * float, `ids` (N,k) int64 and, with a shared expert, `shared` (N,H).
 */
export function buildRouterGraph(name: string, w: MoeWeights, s: MoeShape): { bytes: Uint8Array; weightBytes: number } {
  const g = new GraphBuilder(name);
  const H = s.hidden;
  const h = g.input('h', 'float32', ['rows', H]);
  const normed = g.op('SimplifiedLayerNormalization', [h, g.init('post.norm', w.postNorm, [H])], { axis: -1, epsilon: { float: s.eps } });
  const logits = g.op('MatMul', [normed, g.init('router', w.router, [H, s.experts])]);
  const probs = g.op('Softmax', [logits], { axis: -1 });
  const [vals, ids] = g.node('TopK', [probs, g.ints([s.topK])], 2, { axis: -1, largest: 1, sorted: 1 });
  const weights = s.normTopK ? g.op('Div', [vals, g.op('ReduceSum', [vals, g.ints([-1])], { keepdims: 1 })]) : vals;
  g.node('Identity', [normed], ['normed']);
  g.node('Identity', [weights], ['weights']);
  g.node('Identity', [ids], ['ids']);
  g.output('normed', 'float32', ['rows', H]);
  g.output('weights', 'float32', ['rows', s.topK]);
  g.output('ids', 'int64', ['rows', s.topK]);
  if (w.shared && s.sharedFfn > 0) {
    const ys = swiglu(g, 'shared', normed, w.shared.wgu, w.shared.wdown, H, s.sharedFfn);
    const gate = g.op('Sigmoid', [g.op('MatMul', [normed, g.init('shared.gate', w.shared.gate, [H, 1])])]);
    g.node('Mul', [ys, gate], ['shared']);
    g.output('shared', 'float32', ['rows', H]);
  }
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}

/** One expert's graph: input `rows` (n,H) → `out` (n,H). */
export function buildExpertGraph(name: string, e: ExpertWeights, s: MoeShape): { bytes: Uint8Array; weightBytes: number } {
  const g = new GraphBuilder(name);
  const rows = g.input('rows', 'float32', ['rows', s.hidden]);
  const y = swiglu(g, `e${e.id}`, rows, e.wgu, e.wdown, s.hidden, s.ffn);
  g.node('Identity', [y], ['out']);
  g.output('out', 'float32', ['rows', s.hidden]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}
