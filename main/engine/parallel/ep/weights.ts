/**
 * A rank's MoE weights for one layer, read straight from the model files:
 * the router and the shared expert whole (replicated), and the experts this
 * rank owns — whole experts of its ep shard under EP, or a tp slice of every
 * expert's FFN with tp > 1, ep = 1 (parallel/ep/plan.ts). Only the experts
 * this rank owns are read.
 */
import type { ModelConfig } from '../../model/types';
import type { WeightReader } from '../../model/weights';
import type { Piece } from '../../graph/segments';
import { transpose } from '../../graph/transpose';
import type { ShardPlan } from '../plan';
import { splitEven } from '../split';
import type { Range } from '../split';
import type { ExpertWeights, MoeWeights } from '../../graph/moe';
import { expertRange } from './plan';

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
