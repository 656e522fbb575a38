/**
 * Serving metrics with vLLM's names and meanings, computed from per-request
 * timelines (when each request arrived and when each of its tokens came out).
 * Pure functions, so the math is unit-tested on hand-made timelines.
 *
 * Definitions follow vLLM's `benchmarks/benchmark_serving.py`,
 * `calculate_metrics()` (vllm-project/vllm, e.g. commit 0049e29c):
 *   ttft    first token − request sent (our "sent" is the request's arrival)
 *   tpot    per request: (latency − ttft) / (output_len − 1), only requests
 *           with output_len > 1 enter the tpot list; for goodput a 1-token
 *           request counts with tpot 0 ("we regard tpot as 0 for goodput")
 *   itl     every gap between consecutive tokens of a request (`itls +=
 *           outputs[i].itl`: the first token is not a gap, it is ttft)
 *   e2el    latency = last token − request sent
 *   request_throughput = completed / duration
 *   output_throughput  = Σ output tokens / duration
 *   request_goodput    = requests meeting EVERY given SLO (metric ≤ SLO,
 *                        `all(s >= r ...)`) / duration
 *   percentiles        np.percentile, i.e. linear interpolation between the
 *                      two nearest ranks (our `percentile`)
 * vLLM has no prefill throughput; ours (`prefill_tok_s`) is prompt tokens ÷
 * the wall time during which at least one prefill step was running (the
 * union of the prefill-step intervals, so concurrent DP replicas are not
 * double-counted).
 */

export interface Stat {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/** One request of a serving run; every time is ms since the workload started. */
export interface RequestTimeline {
  id: number;
  /** when the request arrived (could first be scheduled) */
  arrivalMs: number;
  /** when the engine began its prefill (arrival + queueing) */
  firstScheduledMs: number;
  /** when each output token was produced */
  tokenMs: number[];
  promptLen: number;
  /** output tokens produced (= tokenMs.length) */
  outputLen: number;
  finish: 'length' | 'eos' | 'stop';
  /** DP replica that served it */
  replica?: number;
}

/** A prefill step: when it ran and how many prompt tokens it processed. */
export interface PrefillSpan {
  startMs: number;
  endMs: number;
  tokens: number;
}

export interface Slo {
  ttftMs?: number;
  tpotMs?: number;
  e2elMs?: number;
}

export interface ServingMetrics {
  completed: number;
  duration_ms: number;
  total_input_tokens: number;
  total_output_tokens: number;
  ttft_ms: Stat;
  tpot_ms: Stat;
  itl_ms: Stat;
  e2el_ms: Stat;
  /** time from arrival to the start of the request's prefill */
  queue_ms: Stat;
  output_tok_s: number;
  prefill_tok_s: number;
  request_s: number;
  /** requests meeting every SLO ÷ duration; null when no SLO was given */
  goodput_req_s: number | null;
  slo: Slo | null;
  /** wall time with at least one prefill step running */
  prefill_busy_ms: number;
}

/** The p-th percentile (0–100) with linear interpolation between closest ranks (numpy's default). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const idx = (p / 100) * (s.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return s[lo] + (s[hi] - s[lo]) * (idx - lo);
}

export function stat(xs: number[]): Stat {
  const mean = xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  return { mean, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) };
}

export const ttftOf = (r: RequestTimeline): number => (r.tokenMs.length ? r.tokenMs[0] - r.arrivalMs : NaN);
export const e2elOf = (r: RequestTimeline): number => (r.tokenMs.length ? r.tokenMs[r.tokenMs.length - 1] - r.arrivalMs : NaN);

/** vLLM's per-request TPOT: (e2el − ttft) / (n − 1); null for fewer than 2 tokens. */
export function tpotOf(r: RequestTimeline): number | null {
  const n = r.tokenMs.length;
  if (n < 2) return null;
  return (r.tokenMs[n - 1] - r.tokenMs[0]) / (n - 1);
}

/** The gaps between consecutive tokens of one request. */
export function itlOf(r: RequestTimeline): number[] {
  const out: number[] = [];
  for (let k = 1; k < r.tokenMs.length; k++) out.push(r.tokenMs[k] - r.tokenMs[k - 1]);
  return out;
}

/** Total length of the union of [start, end) intervals. */
export function unionMs(spans: { startMs: number; endMs: number }[]): number {
  const s = spans.filter((x) => x.endMs > x.startMs).sort((a, b) => a.startMs - b.startMs);
  let total = 0;
  let curS = -Infinity;
  let curE = -Infinity;
  for (const x of s) {
    if (x.startMs > curE) {
      if (curE > curS) total += curE - curS;
      curS = x.startMs;
      curE = x.endMs;
    } else curE = Math.max(curE, x.endMs);
  }
  if (curE > curS) total += curE - curS;
  return total;
}

/** Does a request meet every SLO given? (1-token requests count with tpot 0, as in vLLM.) */
export function meetsSlo(r: RequestTimeline, slo: Slo): boolean {
  if (slo.ttftMs !== undefined && !(ttftOf(r) <= slo.ttftMs)) return false;
  if (slo.tpotMs !== undefined && !((tpotOf(r) ?? 0) <= slo.tpotMs)) return false;
  if (slo.e2elMs !== undefined && !(e2elOf(r) <= slo.e2elMs)) return false;
  return true;
}

/**
 * The metrics of a serving run. `durationMs`: from the workload's start to
 * the last token (vLLM: benchmark start to the last response). Requests
 * without any token count as not completed and stay out of the latencies.
 */
export function servingMetrics(reqs: RequestTimeline[], o: { durationMs: number; prefill?: PrefillSpan[]; slo?: Slo | null }): ServingMetrics {
  const done = reqs.filter((r) => r.tokenMs.length > 0);
  const itl: number[] = [];
  const tpot: number[] = [];
  for (const r of done) {
    itl.push(...itlOf(r));
    const t = tpotOf(r);
    if (t !== null) tpot.push(t);
  }
  const inTok = done.reduce((a, r) => a + r.promptLen, 0);
  const outTok = done.reduce((a, r) => a + r.tokenMs.length, 0);
  const perS = (n: number) => (o.durationMs > 0 ? (n / o.durationMs) * 1000 : 0);
  const busy = unionMs(o.prefill ?? []);
  const prefillTokens = (o.prefill ?? []).reduce((a, s) => a + s.tokens, 0);
  const slo = o.slo && Object.values(o.slo).some((v) => v !== undefined) ? o.slo : null;
  return {
    completed: done.length,
    duration_ms: o.durationMs,
    total_input_tokens: inTok,
    total_output_tokens: outTok,
    ttft_ms: stat(done.map(ttftOf)),
    tpot_ms: stat(tpot),
    itl_ms: stat(itl),
    e2el_ms: stat(done.map(e2elOf)),
    queue_ms: stat(done.map((r) => r.firstScheduledMs - r.arrivalMs)),
    output_tok_s: perS(outTok),
    prefill_tok_s: busy > 0 ? (prefillTokens / busy) * 1000 : 0,
    request_s: perS(done.length),
    goodput_req_s: slo ? perS(done.filter((r) => meetsSlo(r, slo)).length) : null,
    slo,
    prefill_busy_ms: busy,
  };
}
