/**
 * When to stop generating, checked after every new token (the order follows
 * vLLM's StopChecker):
 *
 *   1. an end-of-sequence id (unless ignoreEos)            → 'eos'
 *   2. one of the extra stop token ids                      → 'stop'
 *   3. a stop string anywhere in the decoded text, possibly
 *      spanning several tokens                              → 'stop', text cut before it
 *
 * Stop strings are searched only in the tail that the new token can have
 * completed (plus a little slack, since a streaming detokenizer may rewrite
 * its last few characters, e.g. a half-decoded UTF-8 sequence).
 */

export interface StopOptions {
  /** ids that end generation (the model's eos ids) */
  eosIds: readonly number[];
  /** extra ids that end generation even with ignoreEos (e.g. a chat template's end-of-turn) */
  stopIds?: readonly number[];
  stopStrings?: readonly string[];
  /** keep going past eos (benchmarks with a fixed output length) */
  ignoreEos?: boolean;
}

export interface StopHit {
  reason: 'eos' | 'stop';
  /** the output text to keep: for a stop string, everything before it; otherwise the text as given */
  text: string;
  /** the stop string that matched, if any */
  stopString?: string;
}

const TAIL_SLACK = 8;

export class StopChecker {
  private readonly eos: ReadonlySet<number>;
  private readonly stopIds: ReadonlySet<number>;
  private readonly stops: readonly string[];
  private readonly longest: number;
  private seen = 0;

  constructor(opts: StopOptions) {
    this.eos = new Set(opts.ignoreEos ? [] : opts.eosIds);
    this.stopIds = new Set(opts.stopIds ?? []);
    this.stops = (opts.stopStrings ?? []).filter((s) => s.length > 0);
    this.longest = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** `text`: the whole decoded output so far, including `tokenId`. */
  check(tokenId: number, text: string): StopHit | null {
    if (this.eos.has(tokenId)) return { reason: 'eos', text };
    if (this.stopIds.has(tokenId)) return { reason: 'stop', text };
    if (this.longest === 0) return null;

    const from = Math.max(0, Math.min(this.seen, text.length) - this.longest - TAIL_SLACK);
    this.seen = text.length;
    let at = -1;
    let which = '';
    for (const s of this.stops) {
      const i = text.indexOf(s, from);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        which = s;
      }
    }
    return at < 0 ? null : { reason: 'stop', text: text.slice(0, at), stopString: which };
  }
}
