/**
 * What the host checks of a rank's messages, and how it names what a rank
 * was doing: the phase of a request ('load', 'prefill', 'decode step',
 * 'serving join' …), the timeout message with its advice, and the shape
 * checks that make a malformed message or step result a failure of that
 * rank instead of silently wrong output.
 */
import type { HostMsgType, RankRequest } from '../rank/protocol';

/** The phase of a request as a user reads it in an error. */
export function phaseOf(req: RankRequest): string {
  switch (req.type) {
    case 'init':
      return 'load';
    case 'step':
      return req.S > 1 ? 'prefill' : 'decode step';
    case 'serve-open':
    case 'serve-prefill':
      return 'serving join';
    case 'serve-step':
      return 'serving step';
    default:
      return req.type;
  }
}

export function timeoutMessage(rank: number, what: string, type: HostMsgType, ms: number, userBound: boolean): string {
  const s = ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
  if (type === 'init') return `rank ${rank} did not finish '${what}' within ${s} (a very large model on a slow disk? the load bound is initTimeoutMs)`;
  const advice = userBound ? 'raise --timeout if steps this long are expected' : 'if steps this long are expected, set --timeout SECONDS';
  return `rank ${rank} did not finish '${what}' within ${s} (hung, or waiting in a collective on a stuck peer; ${advice})`;
}

const MSG_TYPES = new Set(['ok', 'error', 'heartbeat']);
export const STEP_TYPES: ReadonlySet<HostMsgType> = new Set(['step', 'serve-prefill', 'serve-step']);

/** Why a message from a rank is not a RankMsg (null when it is one). */
export function malformed(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return `expected an object, got ${m === null ? 'null' : typeof m}`;
  const o = m as Record<string, unknown>;
  if (o['v'] !== 1) return `protocol version ${JSON.stringify(o['v'])} (expected 1)`;
  if (typeof o['type'] !== 'string' || !MSG_TYPES.has(o['type'])) return `unknown message type ${JSON.stringify(o['type'])}`;
  if (o['type'] === 'heartbeat') return typeof o['rss'] === 'number' && typeof o['rssPeak'] === 'number' ? null : 'a heartbeat without rss / rssPeak';
  if (!Number.isInteger(o['id'])) return `a reply without an integer id (${JSON.stringify(o['id'])})`;
  if (o['type'] === 'error') return typeof o['message'] === 'string' ? null : 'an error without a message';
  return typeof o['rssPeak'] === 'number' ? null : 'a reply without rssPeak';
}

const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

/** Why a reply's result does not fit the request it answers (null when it does); checked where wrong data would pass silently. */
export function malformedResult(type: HostMsgType, result: unknown): string | null {
  if (!STEP_TYPES.has(type)) return null;
  if (typeof result !== 'object' || result === null) return `expected a step result, got ${result === null ? 'null' : typeof result}`;
  const r = result as Record<string, unknown>;
  const t = r['tokens'];
  if (t !== null && !(Array.isArray(t) && t.every((x) => Number.isInteger(x) && x >= 0))) return 'tokens must be null or non-negative integer ids';
  if (r['logits'] !== null && r['logits'] !== undefined && !(r['logits'] instanceof Float32Array)) return 'logits must be a Float32Array or null';
  for (const k of ['computeMs', 'commMs', 'bubbleMs', 'kvBytes']) if (!finite(r[k])) return `${k} must be a finite number`;
  return null;
}
