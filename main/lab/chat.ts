/**
 * Chat over a warm engine: the lab side of LabApi.chat / LabApi.cancel.
 *
 * Starting ranks costs seconds, a chat turn should not: one Engine is kept
 * warm per (model, parallel, device, threads). A turn for another key closes
 * the old engine first (two clusters would fight over the same cores), and an
 * idle engine is closed after a while so the ranks do not sit on memory.
 *
 * A turn renders the whole conversation through the model's chat template
 * (plain "role: text" lines when a model has none), prefills it and streams
 * each generated token as a 'token' event with the request id, the ms since
 * the turn started and the ranks that worked on that step (the ranks whose
 * step count moved: under DP only the replica that serves the turn). Stop
 * strings cut the text and end the turn; cancel(requestId) ends it after the
 * current step with finish_reason 'stop'. Turns run one at a time.
 */
import type { ChatMessage, ChatRequest, CommOpSummary, GenerateResult, LabApi, LabEvent } from './contract';
import type { Engine, EngineOptions } from '../engine/host/engine';
import type { TextTokenizer } from '../engine/model/tokenizer';
import { rankSummaries } from './summary';

/** The part of Engine a chat turn uses (a fake can stand in for it in tests). */
export type ChatEngine = Pick<Engine, 'tokenizer' | 'generate' | 'close' | 'device' | 'threadsPerRank' | 'loadMs' | 'context'> & {
  meter: Pick<Engine['meter'], 'rankTimes'>;
  config: { eosTokenIds: number[] };
  cluster: Pick<Engine['cluster'], 'ready' | 'memory'> & { failed?: unknown; onFailure?: Engine['cluster']['onFailure'] };
  ledgers?: Engine['ledgers'];
};

export interface ChatDeps {
  startEngine?: (o: EngineOptions) => Promise<ChatEngine>;
  /** close a warm engine after this long without a turn (default 10 min) */
  idleMs?: number;
}

export interface ChatService {
  chat(req: ChatRequest): Promise<GenerateResult>;
  cancel(requestId: string): Promise<void>;
  /** closes the warm engine (app quit, tests) */
  close(): Promise<void>;
}

/** The key a warm engine is kept under; any change restarts the ranks. */
export function engineKey(req: Pick<ChatRequest, 'model' | 'parallel' | 'device' | 'threadsPerRank'>): string {
  return JSON.stringify([req.model, req.parallel.trim(), req.device ?? 'cpu', req.threadsPerRank ?? 0]);
}

/** Conversation → prompt ids: the chat template when the model has one, else plain role-prefixed lines. */
export function chatPromptIds(messages: ChatMessage[], tok: TextTokenizer): number[] {
  if (messages.length === 0) throw Object.assign(new Error('a chat turn needs at least one message'), { code: 'bad_request' });
  if (tok.hasChatTemplate) {
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    if (text !== null) return tok.encode(text, { addSpecial: false });
  }
  const plain = messages.map((m) => `${m.role}: ${m.content}`).join('\n') + '\nassistant:';
  return tok.encode(plain, { addSpecial: true });
}

/** Ranks whose step counter moved since `before` (updates `before` in place). */
export function ranksThatStepped(times: { steps: number }[], before: number[]): number[] {
  const worked: number[] = [];
  times.forEach((t, r) => {
    if (t.steps !== (before[r] ?? 0)) worked.push(r);
    before[r] = t.steps;
  });
  return worked;
}

const live = new Set<ChatService>();

/** Closes every chat engine of this process (the app's quit, the web host's close). */
export async function closeAllChats(): Promise<void> {
  await Promise.all([...live].map((c) => c.close()));
}

/** The two LabApi methods, over one chat service of this process (what createLab spreads in). */
export function chatMethods(emit: (e: LabEvent) => void, deps: ChatDeps = {}): Pick<LabApi, 'chat' | 'cancel'> {
  const c = createChat(emit, deps);
  return { chat: (req) => c.chat(req), cancel: (id) => c.cancel(id) };
}

export function createChat(emit: (e: LabEvent) => void, deps: ChatDeps = {}): ChatService {
  const start = deps.startEngine ?? (async (o: EngineOptions) => (await import('../engine/host/engine')).Engine.start(o) as Promise<ChatEngine>);
  const idleMs = deps.idleMs ?? 10 * 60_000;
  let warm: { key: string; engine: Promise<ChatEngine> } | null = null;
  let idle: ReturnType<typeof setTimeout> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  /** requestId → cancelled? for turns queued or running */
  const turns = new Map<string, { cancelled: boolean }>();

  async function dropWarm(): Promise<void> {
    const w = warm;
    warm = null;
    if (idle) clearTimeout(idle);
    idle = null;
    if (w) await w.engine.then((e) => e.close()).catch(() => undefined);
  }

  async function engineFor(req: ChatRequest): Promise<ChatEngine> {
    const key = engineKey(req);
    if (warm?.key !== key) {
      await dropWarm();
      const progress = (message: string) => emit({ kind: 'progress', task: 'chat', done: 0, total: 0, message });
      const engine = start({ model: req.model, parallel: req.parallel, device: req.device, threadsPerRank: req.threadsPerRank, onProgress: progress });
      warm = { key, engine };
      engine.then(
        // a rank dying while the engine sits warm drops it at once: the next turn starts afresh
        (e) => e.cluster.onFailure?.(() => {
          if (warm?.engine === engine) void dropWarm();
        }),
        () => {
          if (warm?.engine === engine) warm = null;
        },
      );
    }
    return warm.engine;
  }

  async function turn(req: ChatRequest, state: { cancelled: boolean }): Promise<GenerateResult> {
    if (idle) clearTimeout(idle);
    const engine = await engineFor(req);
    const tok = engine.tokenizer;
    const ids = chatPromptIds(req.messages, tok);
    const stops = (req.stop ?? []).filter((s) => s.length > 0);
    const stream = tok.createStreamDecoder({ skipSpecial: true });
    const before = engine.meter.rankTimes.map((t) => t.steps);
    const t0 = performance.now();
    let text = '';
    let cut: string | null = null;
    if (engine.ledgers) await engine.ledgers(true).catch(() => undefined);
    if (state.cancelled) return emptyResult(engine, ids, 'stop');
    // A long conversation answers in what is left of the context ('length' when it fills).
    const room = engine.context - ids.length + 1;
    if (room < 1) {
      throw Object.assign(new Error(`the conversation is ${ids.length} tokens, more than this engine's context of ${engine.context}; clear the chat or remove earlier turns`), { code: 'bad_request' });
    }
    const sampling = req.sampling ?? { greedy: true };
    let result;
    try {
      result = await engine.generate([ids], {
        maxNewTokens: Math.min(req.maxNewTokens, room),
        sampling,
        seed: sampling.seed ?? 0,
        eosIds: [...new Set([...engine.config.eosTokenIds, ...tok.eosIds])],
        onToken: (_seq, tokenId) => {
          const piece = stream.push(tokenId);
          text += piece;
          const hit = stops.map((s) => [s, text.indexOf(s)] as const).filter(([, i]) => i >= 0).sort((a, b) => a[1] - b[1])[0];
          const ranks = ranksThatStepped(engine.meter.rankTimes, before);
          const ms = performance.now() - t0;
          // the token that completes a stop string is not shown: only the text before the stop string
          const shown = hit ? piece.slice(0, Math.max(0, piece.length - (text.length - hit[1]))) : piece;
          emit({ kind: 'token', requestId: req.requestId, tokenId, text: shown, ms, ranks });
          if (hit) {
            cut = text.slice(0, hit[1]);
            return 'stop';
          }
          if (state.cancelled) return 'stop';
        },
      });
    } catch (e) {
      // a failed cluster cannot serve the next turn: start afresh then
      if (engine.cluster.failed) await dropWarm();
      throw e;
    }
    const out = result.outputs[0];
    const finalText = cut ?? tok.decode(out.tokens, { skipSpecial: true });
    const n = out.tokens.length;
    const tm = result.timeline.tokenMs;
    const comm = engine.ledgers ? await commOf(engine) : [];
    return {
      token_ids: out.tokens,
      text: finalText,
      finish_reason: state.cancelled && out.finish === 'length' ? 'stop' : out.finish,
      prompt_ids: ids,
      metrics: {
        prompt_tokens: ids.length,
        output_tokens: n,
        load_ms: engine.loadMs,
        ttft_ms: result.timeline.prefillMs,
        tpot_ms: n > 1 ? (tm[n - 1] - tm[0]) / (n - 1) : 0,
        e2el_ms: result.timeline.totalMs,
        prefill_tok_s: result.timeline.prefillMs > 0 ? (ids.length / result.timeline.prefillMs) * 1000 : 0,
        output_tok_s: result.timeline.totalMs > 0 ? (n / result.timeline.totalMs) * 1000 : 0,
      },
      token_ms: tm,
      ranks: rankSummaries(engine),
      comm,
    };
  }

  const service: ChatService = {
    async chat(req) {
      if (!req || typeof req.requestId !== 'string' || !req.requestId) throw Object.assign(new Error('chat needs a requestId (any unique string)'), { code: 'bad_request' });
      if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) throw Object.assign(new Error(`maxNewTokens must be a positive integer, got ${req.maxNewTokens}`), { code: 'bad_request' });
      const state = { cancelled: false };
      turns.set(req.requestId, state);
      live.add(service);
      const run = queue.then(() => turn(req, state));
      queue = run.catch(() => undefined);
      try {
        return await run;
      } finally {
        turns.delete(req.requestId);
        if (turns.size === 0 && warm) {
          idle = setTimeout(() => void dropWarm(), idleMs);
          idle.unref?.();
        }
      }
    },
    async cancel(requestId) {
      const t = turns.get(requestId);
      if (t) t.cancelled = true;
    },
    async close() {
      live.delete(service);
      for (const t of turns.values()) t.cancelled = true;
      await queue;
      await dropWarm();
    },
  };
  return service;
}

/** Measured collectives of the turn, summed over ranks per op. */
async function commOf(engine: ChatEngine): Promise<CommOpSummary[]> {
  const per = (await engine.ledgers!(false).catch(() => [])) as (Record<string, { count: number; bytesSent: number; ms: number } | undefined> | null)[];
  const sum = new Map<string, CommOpSummary>();
  for (const ledger of per) {
    for (const [op, t] of Object.entries(ledger ?? {})) {
      if (!t) continue;
      const s = sum.get(op) ?? { op, count: 0, bytes: 0, ms: 0 };
      s.count += t.count;
      s.bytes += t.bytesSent;
      s.ms += t.ms;
      sum.set(op, s);
    }
  }
  return [...sum.values()];
}

function emptyResult(engine: ChatEngine, ids: number[], finish: 'stop'): GenerateResult {
  return {
    token_ids: [],
    text: '',
    finish_reason: finish,
    prompt_ids: ids,
    metrics: { prompt_tokens: ids.length, output_tokens: 0, load_ms: engine.loadMs, ttft_ms: 0, tpot_ms: 0, e2el_ms: 0, prefill_tok_s: 0, output_tok_s: 0 },
    token_ms: [],
    ranks: rankSummaries(engine),
    comm: [],
  };
}
