/**
 * Expert parallelism, the pure parts: which experts a rank holds, which ranks
 * of an ep group hold the same tokens, which weights a rank reads for a MoE
 * layer, which data-parallel replicas must step in lockstep, and the expert
 * load summary. Used by the shard loader, the MoE block and the host.
 *
 * Placement. Experts are split over the ep group contiguously (splitEven;
 * validate.ts refuses an ep that does not divide the experts): ep rank p owns
 * experts [p·E/ep, (p+1)·E/ep). The router and the shared expert are
 * replicated on every rank.
 *
 * Token classes. Ranks of an ep group that differ only in their tp
 * coordinate hold the same tokens after attention (TP replicates the
 * residual stream). Such a class of c ranks splits its tokens: member i
 * routes and dispatches only its share, rows splitEven(rows, c, i), and the
 * class all-gathers the combined outputs afterwards, so every member ends
 * with the full sublayer output (the "token share" choice for tp=N,ep=N;
 * its closed form is in expected.ts moeStepComm; PARALAB_EP_TP=allreduce swaps
 * it for experts-on-all-tokens + all-reduce when ep = tp). With ep ≤ tp the class is
 * the ep group itself; with ep > tp it is the tp group. Other tp/ep ratios
 * are refused (validate.ts).
 *
 * Without EP (ep=1) and tp>1, experts are tensor-parallel like a dense MLP:
 * every rank holds a tp slice of every expert's FFN (and of the shared
 * expert), routes all tokens, and the sublayer output is all-reduced over tp.
 */
import type { ModelConfig } from '../model/types';
import type { Piece } from '../graph/segments';
import type { ExpertWeights, MoeWeights } from '../graph/moe';
import type { ShardPlan, WeightReader } from '../runtime/shard';
import type { Mesh } from './mesh';
import { splitEven } from './split';
import type { Range } from './split';

/** Experts [start, end) held by ep rank `rank` of `size`. */
export function expertRange(experts: number, size: number, rank: number): Range {
  return splitEven(experts, size, rank);
}

/** The ep rank that owns expert `e`. */
export function ownerOf(e: number, experts: number, size: number): number {
  for (let p = 0; p < size; p++) {
    const [a, b] = splitEven(experts, size, p);
    if (e >= a && e < b) return p;
  }
  throw new RangeError(`expert ${e} is outside 0..${experts - 1}`);
}

/**
 * The token class of a rank: the ranks of its ep group holding the same
 * tokens, via which communicator their outputs are gathered ('ep' when the
 * class is the ep group, 'tp' when it is the tp group), its size and this
 * rank's index. null when the rank routes its tokens alone (c = 1).
 */
export function tokenClass(plan: Pick<ShardPlan, 'tp' | 'ep'>): { via: 'ep' | 'tp'; size: number; index: number } | null {
  const ep = plan.ep?.size ?? 1;
  const tp = plan.tp.size;
  if (ep <= 1 || tp <= 1) return null;
  if (tp % ep === 0) return { via: 'ep', size: ep, index: plan.ep!.rank };
  if (ep % tp === 0) return { via: 'tp', size: tp, index: plan.tp.rank };
  throw new Error(`ep=${ep} and tp=${tp}: one must divide the other (the ranks of an ep group that share tokens must form whole tp groups or a part of one)`);
}

/** HF tensor names of a MoE layer (Mixtral block_sparse_moe, Qwen-MoE / OLMoE mlp). */
export function moeNames(c: ModelConfig, l: number) {
  const p = `model.layers.${l}`;
  const m = c.family === 'mixtral' ? `${p}.block_sparse_moe` : `${p}.mlp`;
  return {
    postNorm: `${p}.post_attention_layernorm.weight`,
    router: `${m}.gate.weight`,
    expert: (e: number) =>
      c.family === 'mixtral'
        ? { gate: `${m}.experts.${e}.w1.weight`, up: `${m}.experts.${e}.w3.weight`, down: `${m}.experts.${e}.w2.weight` }
        : { gate: `${m}.experts.${e}.gate_proj.weight`, up: `${m}.experts.${e}.up_proj.weight`, down: `${m}.experts.${e}.down_proj.weight` },
    shared: { gate: `${p}.mlp.shared_expert.gate_proj.weight`, up: `${p}.mlp.shared_expert.up_proj.weight`, down: `${p}.mlp.shared_expert.down_proj.weight` },
    sharedGate: `${p}.mlp.shared_expert_gate.weight`,
  };
}

/** (rows, cols) row-major → (cols, rows). */
function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return dst;
}

/** HF gate/up (F,H) each → (H, 2F) with columns [gate | up]. */
function gateUp(gate: Float32Array, up: Float32Array, H: number): Float32Array {
  const F = gate.length / H;
  const dst = new Float32Array(H * 2 * F);
  for (let f = 0; f < F; f++) {
    for (let h = 0; h < H; h++) {
      dst[h * 2 * F + f] = gate[f * H + h];
      dst[h * 2 * F + F + f] = up[f * H + h];
    }
  }
  return dst;
}

/**
 * The MoE piece of layer `l` for this rank: its experts (an ep shard, or all
 * of them), each whole under EP or a tp slice of the FFN with tp>1, ep=1.
 * Only the experts this rank owns are read from the files.
 */
export function loadMoePiece(c: ModelConfig, w: WeightReader, l: number, plan: Pick<ShardPlan, 'tp' | 'ep'>): Extract<Piece, { kind: 'moe' }> {
  const moe = c.moe;
  if (!moe) throw new Error(`layer ${l} is not a Mixture-of-Experts layer`);
  const H = c.hidden;
  const n = moeNames(c, l);
  const ep = plan.ep && plan.ep.size > 1 ? plan.ep : null;
  // Tensor-parallel experts only without EP: under EP an ep rank holds whole experts.
  const tpSlice = !ep && plan.tp.size > 1;
  const [e0, e1] = ep ? expertRange(moe.experts, ep.size, ep.rank) : [0, moe.experts];
  const ffn: Range = tpSlice ? splitEven(moe.expertFfn, plan.tp.size, plan.tp.rank) : [0, moe.expertFfn];
  const F = ffn[1] - ffn[0];
  const experts: ExpertWeights[] = [];
  for (let e = e0; e < e1; e++) {
    const en = n.expert(e);
    experts.push({
      id: e,
      wgu: gateUp(w.readF32(en.gate, { rows: ffn }), w.readF32(en.up, { rows: ffn }), H),
      wdown: transpose(w.readF32(en.down, { cols: ffn }), H, F),
    });
  }
  let shared: MoeWeights['shared'] = null;
  let sharedF = 0;
  if (moe.sharedExpertFfn > 0) {
    const sf: Range = tpSlice ? splitEven(moe.sharedExpertFfn, plan.tp.size, plan.tp.rank) : [0, moe.sharedExpertFfn];
    sharedF = sf[1] - sf[0];
    shared = {
      wgu: gateUp(w.readF32(n.shared.gate, { rows: sf }), w.readF32(n.shared.up, { rows: sf }), H),
      wdown: transpose(w.readF32(n.shared.down, { cols: sf }), H, sharedF),
      gate: w.readF32(n.sharedGate),
    };
  }
  return {
    kind: 'moe',
    layer: l,
    w: { postNorm: w.readF32(n.postNorm), router: transpose(w.readF32(n.router), moe.experts, H), experts, shared },
    s: { hidden: H, experts: moe.experts, topK: moe.topK, ffn: F, sharedFfn: sharedF, normTopK: moe.normTopK, eps: c.rmsEps },
  };
}

/**
 * Data-parallel replicas that must step in lockstep: those whose ranks share
 * an ep group (every rank of an ep group makes the same collectives every
 * step). Sets of replica indices, each sorted, ordered by first replica.
 */
export function lockstepReplicaSets(mesh: Mesh): number[][] {
  const { dp, ep } = mesh.spec;
  const parent = Array.from({ length: dp }, (_, d) => d);
  const find = (d: number): number => (parent[d] === d ? d : (parent[d] = find(parent[d])));
  if (ep > 1) {
    for (const p of mesh.ranks) {
      for (const r of p.epGroup) {
        const a = find(p.coord.dp);
        const b = find(mesh.place(r).coord.dp);
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
  }
  const sets = new Map<number, number[]>();
  for (let d = 0; d < dp; d++) {
    const root = find(d);
    if (!sets.has(root)) sets.set(root, []);
    sets.get(root)!.push(d);
  }
  return [...sets.values()].sort((a, b) => a[0] - b[0]);
}

/** Expert load: tokens routed per layer × expert, and max ÷ mean per layer (1 = perfectly balanced). */
export interface ExpertLoad {
  /** [layer][expert] tokens routed since the last reset, summed over ranks */
  tokens: number[][];
  /** [global rank][layer][expert] tokens that rank routed (its share of the tokens) */
  byRank: number[][][];
  /** per layer: max over experts ÷ mean over experts (NaN for a layer that routed nothing) */
  balancedness: number[];
}

export function emptyLoad(world: number, layers: number, experts: number): ExpertLoad {
  const grid = () => Array.from({ length: layers }, () => new Array<number>(experts).fill(0));
  return { tokens: grid(), byRank: Array.from({ length: world }, grid), balancedness: new Array<number>(layers).fill(Number.NaN) };
}

/** Add one rank's routed counts of one step ({ layer: counts per expert }). */
export function addLoad(load: ExpertLoad, rank: number, routed: Record<number, number[]>): void {
  for (const [l, counts] of Object.entries(routed)) {
    const layer = Number(l);
    counts.forEach((n, e) => {
      load.tokens[layer][e] += n;
      load.byRank[rank][layer][e] += n;
    });
  }
  load.balancedness = load.tokens.map(balancedness);
}

/** max ÷ mean of one layer's per-expert counts. */
export function balancedness(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return Number.NaN;
  return Math.max(...counts) / (total / counts.length);
}

/**
 * Micro-batches of a batch of `seqs` sequences of which the first `real` are
 * real (the rest lockstep ghosts), split as stage.ts microBatches splits them.
 */
export function microSplit(seqs: number, real: number, micro: number): { seqs: number; real: number }[] {
  const m = Math.max(1, Math.min(micro, seqs));
  return Array.from({ length: m }, (_, i) => {
    const [a, b] = splitEven(seqs, m, i);
    return { seqs: b - a, real: Math.max(0, Math.min(real - a, b - a)) };
  });
}
