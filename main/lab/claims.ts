/**
 * The claims check: DESIGN.md's "Claims" table (from the course notes), each
 * cell decided from the runs at hand. For every strategy × aspect a row with
 * the claim (zh-CN / en), the measured evidence, and a verdict:
 *   borne_out      the numbers agree with the claim
 *   not_borne_out  they do not
 *   not_measured   the runs needed are not in the set (e.g. no sp / ep run)
 *
 * A strategy is judged on a "pure" run (only that axis > 1; for EP, ep > 1
 * with any hosting axis), compared with `single` on the same model and the
 * same workload (kind, prompt length, output length, batch / requests, seed).
 * Which metric stands for throughput and latency depends on the workload:
 *   prefill  prefill_tok_s, ttft p50
 *   decode   decode_tok_s (B ÷ tpot p50) else output_tok_s, tpot p50
 *   serving  output_tok_s, tpot p50 (ttft / e2el include queueing, which the
 *            claims — about one request's latency — do not speak of)
 * Thresholds are stated in the evidence text, so a reader sees why.
 */
import type { ClaimRow, ClaimVerdict, RunRecord } from './contract';

type Strategy = ClaimRow['strategy'];
type Aspect = ClaimRow['aspect'];
type Text = { en: string; zh: string };

export const STRATEGIES: Strategy[] = ['DP', 'PP', 'TP', 'SP', 'EP'];
export const ASPECTS: Aspect[] = ['memory', 'communication', 'throughput', 'latency'];

/** The claims as the notes make them (DESIGN.md "Claims"). */
export const CLAIMS: Record<Strategy, Record<Aspect, Text>> = {
  DP: {
    memory: { en: 'A full copy of the weights on every device', zh: '每个设备保存一份完整的权重' },
    communication: { en: 'Only requests in and results out: small', zh: '只有请求输入和结果输出，通信量小' },
    throughput: { en: 'Roughly linear in the number of replicas as requests grow', zh: '请求足够多时，吞吐量随副本数近似线性增长' },
    latency: { en: 'No better than one device', zh: '单个请求的延迟不会降低' },
  },
  PP: {
    memory: { en: "Each device holds only its stage's weights", zh: '每个设备只保存本阶段的权重' },
    communication: { en: 'Hidden states passed stage to stage', zh: '阶段之间传递隐藏状态' },
    throughput: { en: 'Rises when all stages are busy, but less than DP', zh: '所有阶段都忙碌时吞吐量提高，但不及数据并行' },
    latency: { en: 'No better: one device at a time, plus the transfers', zh: '延迟不会降低：同一时刻只有一个设备在算，还要加上传输' },
  },
  TP: {
    memory: { en: 'Weights split finer than with PP', zh: '权重切分比流水线并行更细' },
    communication: { en: 'Many collectives per layer', zh: '每层都有多次集合通信' },
    throughput: { en: 'Higher', zh: '吞吐量更高' },
    latency: { en: 'Much lower, if the link is fast', zh: '互联足够快时，延迟明显降低' },
  },
  SP: {
    memory: { en: 'Lower activation peak, same weights', zh: '激活峰值更低，权重相同' },
    communication: { en: 'Fewer collectives than TP', zh: '集合通信比张量并行少' },
    throughput: { en: 'Like TP', zh: '与张量并行相当' },
    latency: { en: 'Like TP; decode cannot be split (one token)', zh: '与张量并行相当；解码阶段只有一个 token，无法切分' },
  },
  EP: {
    memory: { en: 'MoE expert weights split across devices', zh: 'MoE 专家权重分散到各设备' },
    communication: { en: 'All-to-all dispatch / combine after each expert layer', zh: '每个专家层之后进行 all-to-all 分发 / 合并' },
    throughput: { en: 'Higher in expert layers', zh: '专家层吞吐量更高' },
    latency: { en: 'Lower in expert layers; attention needs a hybrid (DP-attention or TP)', zh: '专家层延迟更低；注意力部分需要混合并行（DP 注意力或 TP）' },
  },
};

const AXIS: Record<Strategy, 'dp' | 'pp' | 'tp' | 'sp' | 'ep'> = { DP: 'dp', PP: 'pp', TP: 'tp', SP: 'sp', EP: 'ep' };

/** Same work: model, workload kind and shape, seed. */
export function workloadKey(r: RunRecord): string {
  const w = r.workload;
  return [r.model.id, w.kind, w['prompt_len'], w['output_len'], w['batch'], w['requests'], w['rate'], w['seed']].map((x) => String(x ?? '')).join('|');
}

function degree(r: RunRecord, axis: 'dp' | 'pp' | 'tp' | 'sp' | 'ep'): number {
  return Number(r.parallel[axis] ?? 1);
}

/** Only `axis` is > 1 (EP may sit on dp / tp / sp ranks, which it needs). */
export function isPure(r: RunRecord, s: Strategy): boolean {
  const axes = ['dp', 'pp', 'tp', 'sp', 'ep'] as const;
  if (s === 'EP') return degree(r, 'ep') > 1 && degree(r, 'pp') === 1;
  if (s === 'SP' && degree(r, 'sp') === 1 && r.parallel['sp_impl'] === 'megatron') return axes.every((a) => a === 'tp' || degree(r, a) === 1) && degree(r, 'tp') > 1;
  return degree(r, AXIS[s]) > 1 && axes.every((a) => a === AXIS[s] || degree(r, a) === 1) && !(s === 'TP' && r.parallel['sp_impl'] === 'megatron');
}

export function isMegatron(r: RunRecord): boolean {
  return r.parallel['sp_impl'] === 'megatron' && degree(r, 'tp') > 1;
}

export function isSingle(r: RunRecord): boolean {
  // the ceiling variants (single cut per sublayer / monolithic) are not the reference
  return r.parallel.world === 1 && (r.parallel['segments'] === undefined || r.parallel['segments'] === 'collectives');
}

export function throughputOf(r: RunRecord): { value: number; name: string } {
  const m = r.metrics;
  if (r.workload.kind === 'prefill') return { value: m.prefill_tok_s, name: 'prefill tok/s' };
  if (r.workload.kind === 'decode' && typeof m['decode_tok_s'] === 'number') return { value: m['decode_tok_s'] as number, name: 'decode tok/s' };
  return { value: m.output_tok_s, name: 'output tok/s' };
}

export function latencyOf(r: RunRecord): { value: number; name: string } {
  const m = r.metrics;
  if (r.workload.kind === 'prefill') return { value: m.ttft_ms.p50, name: 'TTFT p50' };
  // serving too: TTFT and E2EL include queueing, which more replicas shorten; the claims are about one request's latency
  return { value: m.tpot_ms.p50, name: 'TPOT p50' };
}

const maxWeights = (r: RunRecord) => Math.max(...r.ranks.map((x) => x.memory?.weights_bytes ?? 0));
const maxActivation = (r: RunRecord) => Math.max(...r.ranks.map((x) => x.memory?.activation_peak_bytes ?? 0));
const commBytes = (r: RunRecord, op?: (op: string) => boolean) => r.comm.filter((c) => !op || op(c.op)).reduce((a, c) => a + c.bytes_sent, 0);
const commCount = (r: RunRecord, op?: (op: string) => boolean) => r.comm.filter((c) => !op || op(c.op)).reduce((a, c) => a + c.count, 0);
const steps = (r: RunRecord) => Math.max(1, ...r.ranks.map((x) => Number((x.time as { steps?: number } | undefined)?.steps ?? 0)));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const f = (x: number, d = 2) => x.toFixed(d);
const collective = (op: string) => op !== 'send' && op !== 'recv';

interface Judged {
  verdict: ClaimVerdict;
  evidence: Text;
  runIds: string[];
}

const notMeasured = (en: string, zh: string): Judged => ({ verdict: 'not_measured', evidence: { en, zh }, runIds: [] });
const verdict = (ok: boolean): ClaimVerdict => (ok ? 'borne_out' : 'not_borne_out');

/** The claims table for a set of runs: one row per strategy × aspect (20 rows). */
export function checkClaims(runs: RunRecord[]): ClaimRow[] {
  const rows: ClaimRow[] = [];
  for (const s of STRATEGIES) {
    for (const a of ASPECTS) {
      const j = judge(s, a, runs);
      rows.push({ strategy: s, aspect: a, claim: CLAIMS[s][a], evidence: j.evidence, verdict: j.verdict, runIds: j.runIds });
    }
  }
  return rows;
}

/** The newest pure run of a strategy that has a `single` on the same work, with that single. */
function pair(s: Strategy, runs: RunRecord[]): { run: RunRecord; single: RunRecord } | null {
  const sorted = [...runs].sort((x, y) => y.created.localeCompare(x.created));
  // The notes' SP row is Megatron's SP: judge a Megatron-SP run when there is one.
  const candidates = s === 'SP' ? [...sorted.filter(isMegatron), ...sorted.filter((r) => !isMegatron(r))] : sorted;
  for (const run of candidates) {
    if (!isPure(run, s)) continue;
    const single = sorted.find((r) => isSingle(r) && workloadKey(r) === workloadKey(run));
    if (single) return { run, single };
  }
  return null;
}

function judge(s: Strategy, a: Aspect, runs: RunRecord[]): Judged {
  const p = pair(s, runs);
  if (!p) {
    const any = runs.some((r) => isPure(r, s));
    return any
      ? notMeasured(`a ${s} run is here but no single run on the same workload to compare with`, `有 ${s} 运行，但没有相同负载的单设备运行可供比较`)
      : notMeasured(`no pure ${s} run in this report`, `本报告中没有单独的 ${s} 运行`);
  }
  const { run, single } = p;
  const ids = [run.id, single.id];
  // Megatron-SP runs on the tp ranks: its degree is tp
  const n = s === 'SP' && isMegatron(run) ? degree(run, 'tp') : degree(run, AXIS[s]);
  const tput = throughputOf(run);
  const tput1 = throughputOf(single);
  const lat = latencyOf(run);
  const lat1 = latencyOf(single);
  const ratioT = tput1.value > 0 ? tput.value / tput1.value : 0;
  const ratioL = lat1.value > 0 ? lat.value / lat1.value : 0;
  const spec = run.parallel.spec;
  const J = (ok: boolean, en: string, zh: string, extra: string[] = []): Judged => ({ verdict: verdict(ok), evidence: { en, zh }, runIds: [...ids, ...extra] });
  const sameWork = (r: RunRecord) => workloadKey(r) === workloadKey(run);
  const peer = (t: Strategy) => runs.find((r) => isPure(r, t) && degree(r, AXIS[t]) === n && sameWork(r));

  if (a === 'throughput') {
    if (s === 'DP') {
      // "roughly linear": at least half of the ideal gain over single
      const need = 1 + 0.5 * (n - 1);
      return J(ratioT >= need, `${spec}: ${f(tput.value, 1)} vs single ${f(tput1.value, 1)} ${tput.name} = ×${f(ratioT)} (linear ×${n}; borne out from ×${f(need)})`, `${spec}：${f(tput.value, 1)}，单设备 ${f(tput1.value, 1)} ${tput.name}，×${f(ratioT)}（线性为 ×${n}，≥ ×${f(need)} 视为成立）`);
    }
    if (s === 'PP') {
      const dp = peer('DP');
      if (!dp) return { ...notMeasured(`${spec}: ×${f(ratioT)} of single ${tput.name}; no dp=${n} run on the same work to compare with`, `${spec}：单设备的 ×${f(ratioT)}（${tput.name}）；没有相同负载的 dp=${n} 运行可比较`), runIds: ids };
      const td = throughputOf(dp).value;
      return J(tput.value < td && ratioT > 1, `${spec} ${f(tput.value, 1)} ${tput.name} (×${f(ratioT)} of single) vs dp=${n} ${f(td, 1)}: rises above single and stays below DP?`, `${spec} ${f(tput.value, 1)}（单设备的 ×${f(ratioT)}），dp=${n} 为 ${f(td, 1)}：是否高于单设备且低于 DP？`, [dp.id]);
    }
    if (s === 'SP') {
      const tp = peer('TP');
      if (!tp) return { ...notMeasured(`${spec}: ×${f(ratioT)} of single; no tp=${n} run to compare with`, `${spec}：单设备的 ×${f(ratioT)}；没有 tp=${n} 运行可比较`), runIds: ids };
      const r = tput.value / Math.max(1e-9, throughputOf(tp).value);
      return J(r > 0.8 && r < 1.25, `${spec} vs tp=${n}: ×${f(r)} ${tput.name} (like TP: within ×0.8–1.25)`, `${spec} 与 tp=${n} 相比 ×${f(r)}（与 TP 相当：在 ×0.8–1.25 之间）`, [tp.id]);
    }
    return J(ratioT > 1, `${spec}: ${f(tput.value, 1)} vs single ${f(tput1.value, 1)} ${tput.name} = ×${f(ratioT)}`, `${spec}：${f(tput.value, 1)}，单设备 ${f(tput1.value, 1)} ${tput.name}，×${f(ratioT)}`);
  }

  if (a === 'latency') {
    const text = `${spec}: ${lat.name} ${f(lat.value)} ms vs single ${f(lat1.value)} ms = ×${f(ratioL)}`;
    const zh = `${spec}：${lat.name} ${f(lat.value)} ms，单设备 ${f(lat1.value)} ms，×${f(ratioL)}`;
    if (s === 'DP' || s === 'PP') return J(ratioL >= 0.9, `${text} (no better: ≥ ×0.9)`, `${zh}（不降低：≥ ×0.9）`);
    if (s === 'TP') return J(ratioL <= 0.8, `${text} (much lower: ≤ ×0.8)`, `${zh}（明显降低：≤ ×0.8）`);
    if (s === 'SP') {
      const tp = peer('TP');
      if (!tp) return { ...notMeasured(`${text}; no tp=${n} run to compare with`, `${zh}；没有 tp=${n} 运行可比较`), runIds: ids };
      const r = lat.value / Math.max(1e-9, latencyOf(tp).value);
      return J(r > 0.8 && r < 1.25, `${spec} vs tp=${n}: ${lat.name} ×${f(r)} (like TP: within ×0.8–1.25)`, `${spec} 与 tp=${n} 相比 ${lat.name} ×${f(r)}（与 TP 相当）`, [tp.id]);
    }
    return J(ratioL < 1, `${text} (lower: < ×1)`, `${zh}（降低：< ×1）`);
  }

  if (a === 'memory') {
    const w = maxWeights(run);
    const w1 = maxWeights(single);
    const r = w1 > 0 ? w / w1 : 0;
    const base = `largest rank's weights ${mib(w)} vs single ${mib(w1)} (×${f(r)})`;
    const zh = `单个 rank 最大权重 ${mib(w)}，单设备 ${mib(w1)}（×${f(r)}）`;
    if (s === 'DP') return J(r >= 0.95, `${spec}: ${base}; a full copy: ≥ ×0.95`, `${spec}：${zh}；完整副本：≥ ×0.95`);
    if (s === 'PP') return J(r <= 1.5 / n, `${spec}: ${base}; its stage only: ≤ ×${f(1.5 / n)}`, `${spec}：${zh}；只有本阶段：≤ ×${f(1.5 / n)}`);
    if (s === 'TP') {
      const pp = peer('PP');
      if (pp) {
        const wp = maxWeights(pp);
        const same = Math.abs(w - wp) <= 0.02 * wp;
        return J(
          w < wp && !same,
          `${spec}: largest rank ${mib(w)} vs pp=${n} ${mib(wp)}${same ? ': the same bytes at the same degree — TP cuts inside every layer, PP between layers, but neither holds less' : ': less than PP?'}`,
          `${spec}：最大 rank ${mib(w)}，pp=${n} 为 ${mib(wp)}${same ? '：相同并行度下字节数相同——TP 在每层内部切分，PP 在层之间切分，但每个设备保存的并不更少' : '：是否少于 PP？'}`,
          [pp.id],
        );
      }
      return J(r <= 1.2 / n, `${spec}: ${base}; split: ≤ ×${f(1.2 / n)} (no pp=${n} run to compare with)`, `${spec}：${zh}；切分：≤ ×${f(1.2 / n)}（没有 pp=${n} 运行）`);
    }
    if (s === 'SP') {
      const act = maxActivation(run);
      const tp = isMegatron(run) ? peer('TP') : undefined;
      if (tp) {
        // Megatron-SP against plain TP of the same degree: same weights, lower activation peak
        const actT = maxActivation(tp);
        const wT = maxWeights(tp);
        const same = Math.abs(w - wT) <= 0.02 * wT;
        return J(
          act < actT && same,
          `${spec}: activation peak ${mib(act)} vs tp=${n} ${mib(actT)} (×${f(act / Math.max(1, actT))}); largest rank's weights ${mib(w)} vs tp=${n} ${mib(wT)}`,
          `${spec}：激活峰值 ${mib(act)}，tp=${n} 为 ${mib(actT)}（×${f(act / Math.max(1, actT))}）；单个 rank 最大权重 ${mib(w)}，tp=${n} 为 ${mib(wT)}`,
          [tp.id],
        );
      }
      const act1 = maxActivation(single);
      return J(act < act1 && r >= 0.95, `${spec}: activation peak ${mib(act)} vs single ${mib(act1)}; ${base}`, `${spec}：激活峰值 ${mib(act)}，单设备 ${mib(act1)}；${zh}`);
    }
    return J(r < 1, `${spec}: ${base}`, `${spec}：${zh}`);
  }

  // communication
  const bytes = commBytes(run);
  if (s === 'DP') return J(bytes === 0, `${spec}: ${mib(bytes)} sent between ranks (requests and results travel host ↔ rank only)`, `${spec}：rank 之间发送 ${mib(bytes)}（请求与结果只在主机与 rank 之间）`);
  if (s === 'PP') {
    const p2p = commBytes(run, (op) => op === 'send');
    const expected = run.comm.filter((c) => c.op === 'send').reduce((x, c) => x + c.expected_bytes_sent, 0);
    const coll = commBytes(run, collective);
    return J(p2p > 0 && p2p === expected && coll === 0, `${spec}: ${mib(p2p)} of hidden states sent stage → stage (closed form ${mib(expected)}), ${mib(coll)} in collectives`, `${spec}：阶段间发送隐藏状态 ${mib(p2p)}（闭式 ${mib(expected)}），集合通信 ${mib(coll)}`);
  }
  if (s === 'TP') {
    const perLayer = commCount(run, collective) / run.parallel.world / steps(run) / run.model.layers;
    return J(perLayer >= 2, `${spec}: ${f(perLayer)} collectives per layer per step per rank (${commCount(run, collective)} in all, ${mib(commBytes(run, collective))} sent)`, `${spec}：每 rank 每步每层 ${f(perLayer)} 次集合通信（共 ${commCount(run, collective)} 次，发送 ${mib(commBytes(run, collective))}）`);
  }
  if (s === 'SP') {
    const tp = peer('TP');
    if (!tp) return { ...notMeasured(`${spec}: ${commCount(run, collective)} collectives; no tp=${n} run to compare with`, `${spec}：${commCount(run, collective)} 次集合通信；没有 tp=${n} 运行可比较`), runIds: ids };
    const c = commCount(run, collective) / steps(run);
    const ct = commCount(tp, collective) / steps(tp);
    return J(c < ct, `${spec}: ${f(c, 1)} collectives per step vs tp=${n} ${f(ct, 1)}`, `${spec}：每步 ${f(c, 1)} 次集合通信，tp=${n} 为 ${f(ct, 1)}`, [tp.id]);
  }
  const a2a = commCount(run, (op) => op === 'all_to_all');
  return J(a2a > 0, `${spec}: ${a2a} all-to-all calls, ${mib(commBytes(run, (op) => op === 'all_to_all'))} sent`, `${spec}：${a2a} 次 all-to-all，发送 ${mib(commBytes(run, (op) => op === 'all_to_all'))}`);
}
