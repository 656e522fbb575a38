/**
 * Chat domain: the conversation, the engine it runs on (model, spec, device,
 * threads — change any and the next turn runs on the new mesh, with the whole
 * conversation so far), sampling settings, and the streaming turn: tokens
 * arrive as 'token' events for our requestId, each with its time since the
 * turn started and the ranks that worked on it.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { ChatMessage, DeviceKindName, GenerateResult, SpecCheck } from '../../../main/lab/contract';
import { lab } from '../api';
import { errorText, onLabEvent } from './events';

export interface TokenStat {
  tokenId: number;
  text: string;
  ms: number;
  ranks: number[];
}

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** assistant turns: where and how it was generated */
  spec?: string;
  model?: string;
  tokens?: TokenStat[];
  result?: GenerateResult;
  error?: string;
}

export interface SamplingForm {
  greedy: boolean;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
}

/** TTFT and inter-token latencies of a streamed turn. */
export function tokenTimings(tokens: { ms: number }[]): { ttft: number | null; itl: number[]; meanItl: number | null } {
  if (!tokens.length) return { ttft: null, itl: [], meanItl: null };
  const itl = tokens.slice(1).map((t, i) => t.ms - tokens[i].ms);
  return { ttft: tokens[0].ms, itl, meanItl: itl.length ? itl.reduce((a, b) => a + b, 0) / itl.length : null };
}

let counter = 0;
const newRequestId = () => `chat-${Date.now().toString(36)}-${++counter}`;

export const useChatStore = defineStore('chat', () => {
  const model = ref('synth-llama-tiny');
  const spec = ref('tp=2');
  const device = ref<DeviceKindName>('cpu');
  const threads = ref(1);
  const system = ref('');
  const maxNewTokens = ref(48);
  const stop = ref('');
  const sampling = ref<SamplingForm>({ greedy: true, temperature: 0.8, topP: 0.95, topK: 40, seed: 0 });
  const turns = ref<Turn[]>([]);
  const streaming = ref<string | null>(null);
  const status = ref<string | null>(null);
  /** the engine's verdict on (model, spec), checked as the user types; null until known */
  const check = ref<SpecCheck | null>(null);
  /** the (model, spec) that `check` answers */
  const checkedFor = ref('');
  let checkSeq = 0;

  async function validate(): Promise<void> {
    const mine = ++checkSeq;
    const asked = { model: model.value, parallel: spec.value };
    try {
      const c = await lab().checkSpec(asked);
      if (mine === checkSeq) {
        check.value = c;
        checkedFor.value = `${asked.model}\n${asked.parallel}`;
      }
    } catch {
      // a lab without checkSpec: the turn itself will report a bad spec
      if (mine === checkSeq) check.value = null;
    }
  }

  onLabEvent('token', (e) => {
    if (e.requestId !== streaming.value) return;
    const t = turns.value[turns.value.length - 1];
    if (!t || t.role !== 'assistant') return;
    t.content += e.text;
    t.tokens!.push({ tokenId: e.tokenId, text: e.text, ms: e.ms ?? 0, ranks: e.ranks ?? [] });
    status.value = null;
  });
  onLabEvent('progress', (e) => {
    if (e.task === 'chat' && streaming.value) status.value = e.message;
  });

  function messages(): ChatMessage[] {
    const m: ChatMessage[] = system.value.trim() ? [{ role: 'system', content: system.value.trim() }] : [];
    for (const t of turns.value) if (!t.error) m.push({ role: t.role, content: t.content });
    return m;
  }

  async function generate(): Promise<void> {
    const requestId = newRequestId();
    const msgs = messages();
    const turn: Turn = { role: 'assistant', content: '', spec: spec.value, model: model.value, tokens: [] };
    turns.value.push(turn);
    streaming.value = requestId;
    const s = sampling.value;
    try {
      const result = await lab().chat({
        requestId,
        model: model.value,
        parallel: spec.value,
        device: device.value,
        threadsPerRank: threads.value,
        messages: msgs,
        maxNewTokens: maxNewTokens.value,
        sampling: s.greedy ? { greedy: true } : { temperature: s.temperature, topP: s.topP, topK: s.topK, seed: s.seed },
        stop: stop.value ? stop.value.split('|').filter(Boolean) : [],
      });
      const last = turns.value[turns.value.length - 1];
      last.content = result.text;
      last.result = result;
    } catch (e) {
      turns.value[turns.value.length - 1].error = errorText(e);
    } finally {
      streaming.value = null;
      status.value = null;
    }
  }

  async function send(text: string): Promise<void> {
    const t = text.trim();
    if (!t || streaming.value) return;
    turns.value.push({ role: 'user', content: t });
    await generate();
  }

  /** Drops the last answer and asks again (same conversation, current spec and settings). */
  async function regenerate(): Promise<void> {
    if (streaming.value) return;
    while (turns.value.length && turns.value[turns.value.length - 1].role === 'assistant') turns.value.pop();
    if (turns.value.length) await generate();
  }

  async function cancel(): Promise<void> {
    if (streaming.value) await lab().cancel(streaming.value).catch(() => undefined);
  }

  function clear(): void {
    if (!streaming.value) turns.value = [];
  }

  return { model, spec, device, threads, system, maxNewTokens, stop, sampling, turns, streaming, status, check, checkedFor, validate, send, regenerate, cancel, clear };
});
