/**
 * Serving where the ranks cannot hold a ragged batch (sequence / expert
 * parallel blocks keep their own per-batch state): each replica serves one
 * request at a time through `engine.generate`, in arrival order, as soon as
 * the request has arrived.
 */
import type { Engine } from './engine';
import type { ServeOptions, ServeRequest, ServeResult, ServedRequest, ServeStepLog } from './serve-types';

export async function serveOneAtATime(engine: Engine, reqs: ServeRequest[], o: ServeOptions): Promise<Omit<ServeResult, 'notes'>> {
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const queue = [...reqs].sort((a, b) => a.arrivalMs - b.arrivalMs);
  const out: ServedRequest[] = [];
  const steps: ServeStepLog[] = [];
  let finished = 0;
  const lane = async () => {
    for (;;) {
      const r = queue.shift();
      if (!r) return;
      const wait = r.arrivalMs - now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      const s: ServedRequest = { id: r.id, arrivalMs: r.arrivalMs, firstScheduledMs: now(), tokenMs: [], tokens: [], promptLen: r.prompt.length, finish: 'length', replica: -1, lane: 0 };
      let last = s.firstScheduledMs;
      const { outputs } = await engine.generate([r.prompt], {
        maxNewTokens: r.maxNewTokens,
        sampling: r.sampling ?? { greedy: true },
        seed: r.seed ?? r.id * 7919,
        eosIds: o.eosIds,
        ignoreEos: o.ignoreEos,
        onToken: () => {
          const t = now();
          steps.push({ replica: -1, lane: 0, kind: s.tokenMs.length === 0 ? 'prefill' : 'decode', startMs: last, endMs: t, batch: 1, S: s.tokenMs.length === 0 ? r.prompt.length : 1 });
          s.tokenMs.push(t);
          last = t;
        },
      });
      s.tokens = outputs[0].tokens;
      s.finish = outputs[0].finish;
      // generate() does not call onToken for an EOS token; it came out at the end.
      while (s.tokenMs.length < s.tokens.length) s.tokenMs.push(now());
      out.push(s);
      finished++;
      o.onFinish?.(s, finished, reqs.length);
    }
  };
  await Promise.all(Array.from({ length: engine.spec.dp }, lane));
  out.sort((a, b) => a.id - b.id);
  const durationMs = Math.max(0, ...out.map((r) => r.tokenMs[r.tokenMs.length - 1] ?? 0));
  return { requests: out, steps, durationMs, mode: 'one-at-a-time' };
}
