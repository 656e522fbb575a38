/**
 * One request, start to finish: start an engine for (model, spec), turn the
 * prompt into ids (tokenizer + chat template unless raw or ids given), stream
 * tokens, stop on EOS / stop strings / length, and report vLLM-named metrics.
 */
import { DEFAULT_CONTEXT, Engine } from '../engine/host/engine';
import { StopChecker } from '../engine/sample/stop';
import type { TextTokenizer } from '../engine/model/tokenizer';
import { rankSummaries } from './summary';
import type { GenerateRequest, GenerateResult, LabEvent } from './contract';

export interface GenerateRunOptions {
  onEvent?: (e: LabEvent) => void;
  requestId?: string;
  /** aborting ends the run after the current step, with finish_reason 'stop' */
  signal?: AbortSignal;
}

/** The prompt as token ids: exact ids, or text through the chat template (unless raw) and the tokenizer. */
export function promptIds(req: Pick<GenerateRequest, 'prompt' | 'promptIds' | 'raw'>, tok: TextTokenizer): number[] {
  if (req.promptIds && req.promptIds.length > 0) return req.promptIds;
  if (req.prompt === undefined) throw new Error('give a prompt: --prompt TEXT or --prompt-ids 1,2,3');
  if (!req.raw && tok.hasChatTemplate) {
    const text = tok.applyChatTemplate([{ role: 'user', content: req.prompt }], { addGenerationPrompt: true });
    if (text !== null) return tok.encode(text, { addSpecial: false });
  }
  return tok.encode(req.prompt, { addSpecial: true });
}

export async function generate(req: GenerateRequest, o: GenerateRunOptions = {}): Promise<GenerateResult> {
  const progress = (message: string) => o.onEvent?.({ kind: 'progress', task: 'generate', done: 0, total: 0, message });
  // The prompt's length first, so a long request gets an engine with room for it (up to the model's context).
  const { config, tokenizer } = await Engine.prepareModel(req.model, progress);
  const ids = promptIds(req, tokenizer);
  const need = ids.length + req.maxNewTokens - 1;
  const engine = await Engine.start({
    model: req.model,
    parallel: req.parallel,
    device: req.device,
    devices: req.devices,
    threadsPerRank: req.threadsPerRank,
    timeoutMs: req.timeoutMs,
    maxSeq: Number.isInteger(need) ? Math.min(config.maxPositions, Math.max(DEFAULT_CONTEXT, need)) : undefined,
    onProgress: progress,
  });
  try {
    const stop = new StopChecker({ eosIds: [], stopStrings: req.stop ?? [], ignoreEos: true });
    const stream = engine.tokenizer.createStreamDecoder({ skipSpecial: true });
    let text = '';
    let stopped = false;
    const sampling = req.sampling ?? { greedy: true };
    // cancelled while the engine loaded: no step runs
    const { outputs, timeline } = o.signal?.aborted
      ? { outputs: [{ tokens: [] as number[], finish: 'stop' as const, logits: [] }], timeline: { tokenMs: [], prefillMs: 0, totalMs: 0 } }
      : await engine.generate([ids], {
      maxNewTokens: req.maxNewTokens,
      sampling,
      seed: sampling.seed ?? 0,
      ignoreEos: req.ignoreEos,
      onToken: (_seq, tokenId) => {
        const piece = stream.push(tokenId);
        text += piece;
        o.onEvent?.({ kind: 'token', requestId: o.requestId ?? '', tokenId, text: piece });
        if (o.signal?.aborted) {
          stopped = true;
          return 'stop';
        }
        const verdict = stop.check(tokenId, text);
        if (verdict?.reason === 'stop') {
          text = verdict.text;
          stopped = true;
          return 'stop';
        }
      },
    });
    const out = outputs[0];
    if (!stopped) text = engine.tokenizer.decode(out.tokens, { skipSpecial: true });
    const n = out.tokens.length;
    const tpot = n > 1 ? (timeline.tokenMs[n - 1] - timeline.tokenMs[0]) / (n - 1) : 0;
    const ranks = rankSummaries(engine);
    return {
      token_ids: out.tokens,
      text,
      finish_reason: out.finish,
      prompt_ids: ids,
      metrics: {
        prompt_tokens: ids.length,
        output_tokens: n,
        load_ms: engine.loadMs,
        ttft_ms: timeline.prefillMs,
        tpot_ms: tpot,
        e2el_ms: timeline.totalMs,
        prefill_tok_s: timeline.prefillMs > 0 ? (ids.length / timeline.prefillMs) * 1000 : 0,
        output_tok_s: timeline.totalMs > 0 ? (n / timeline.totalMs) * 1000 : 0,
      },
      ranks,
      comm: [],
    };
  } finally {
    await engine.close();
  }
}

