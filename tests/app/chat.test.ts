/**
 * Chat over a warm engine (main/lab/chat.ts): the pure pieces, then real rank
 * processes on synth-llama-tiny: tokens stream with timings and the ranks that
 * worked, the engine stays warm for the next turn and is replaced when the
 * spec changes, cancel ends a turn with 'stop', stop strings cut the text.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatPromptIds, createChat, engineKey, ranksThatStepped, type ChatEngine, type ChatService } from '../../main/lab/chat';
import type { EngineOptions } from '../../main/engine/host/engine';
import type { LabEvent } from '../../main/lab/contract';
import type { TextTokenizer } from '../../main/engine/model/tokenizer';

describe('chat: pure pieces', () => {
  it('keys a warm engine by model, spec, device and threads', () => {
    const a = engineKey({ model: 'm', parallel: 'tp=2' });
    expect(engineKey({ model: 'm', parallel: ' tp=2 ', device: 'cpu' })).toBe(a);
    expect(engineKey({ model: 'm', parallel: 'dp=2' })).not.toBe(a);
    expect(engineKey({ model: 'm', parallel: 'tp=2', threadsPerRank: 1 })).not.toBe(a);
    expect(engineKey({ model: 'm', parallel: 'tp=2', device: 'webgpu' })).not.toBe(a);
  });

  it('lists the ranks whose step counter moved', () => {
    const before = [3, 3, 0, 0];
    expect(ranksThatStepped([{ steps: 4 }, { steps: 4 }, { steps: 0 }, { steps: 0 }], before)).toEqual([0, 1]);
    expect(before).toEqual([4, 4, 0, 0]);
    expect(ranksThatStepped([{ steps: 4 }, { steps: 4 }, { steps: 1 }, { steps: 1 }], before)).toEqual([2, 3]);
  });

  it('renders the conversation through the template, else as role lines', () => {
    const seen: string[] = [];
    const tok = {
      hasChatTemplate: true,
      applyChatTemplate: (m: { role: string; content: string }[]) => m.map((x) => `<${x.role}>${x.content}`).join('') + '<assistant>',
      encode: (text: string, o?: { addSpecial?: boolean }) => (seen.push(`${o?.addSpecial}:${text}`), [1, 2]),
    } as unknown as TextTokenizer;
    chatPromptIds([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }, { role: 'user', content: 'again' }], tok);
    expect(seen.pop()).toBe('false:<user>hi<assistant>yo<user>again<assistant>');
    chatPromptIds([{ role: 'user', content: 'hi' }], { ...tok, hasChatTemplate: false } as TextTokenizer);
    expect(seen.pop()).toBe('true:user: hi\nassistant:');
    expect(() => chatPromptIds([], tok)).toThrow('at least one message');
  });
});

describe('chat over rank processes (synth-llama-tiny)', () => {
  let cache: string;
  const saved = process.env.PARALAB_CACHE;
  const events: LabEvent[] = [];
  const started: string[] = [];
  const closed: string[] = [];
  let chat: ChatService;

  beforeAll(() => {
    cache = mkdtempSync(path.join(os.tmpdir(), 'paralab-chat-'));
    process.env.PARALAB_CACHE = cache;
    chat = createChat((e) => events.push(e), {
      // the real engine, counted: which specs started and which closed
      startEngine: async (o: EngineOptions) => {
        const { Engine } = await import('../../main/engine/host/engine');
        const e = await Engine.start({ ...o, threadsPerRank: 1 });
        started.push(o.parallel);
        const close = e.close.bind(e);
        return Object.assign(e, { close: async () => (closed.push(o.parallel), close()) }) as ChatEngine;
      },
    });
  });
  afterAll(async () => {
    await chat?.close();
    process.env.PARALAB_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  });

  const ask = (requestId: string, parallel: string, extra: object = {}) =>
    chat.chat({ requestId, model: 'synth-llama-tiny', parallel, messages: [{ role: 'user', content: 'What is tensor parallelism?' }], maxNewTokens: 6, ...extra });
  const tokensOf = (id: string) => events.filter((e): e is Extract<LabEvent, { kind: 'token' }> => e.kind === 'token' && e.requestId === id);

  it('streams tokens with ms and ranks, keeps the engine warm, restarts it for another spec', async () => {
    const r1 = await ask('a', 'tp=2', { sampling: { greedy: true } });
    const t1 = tokensOf('a');
    expect(r1.token_ids.length).toBeGreaterThan(0);
    expect(t1.map((e) => e.tokenId)).toEqual(r1.finish_reason === 'eos' ? r1.token_ids.slice(0, -1) : r1.token_ids);
    expect(t1.every((e) => e.ranks!.join() === '0,1')).toBe(true);
    const ms = t1.map((e) => e.ms!);
    expect(ms.every((m, i) => m > 0 && (i === 0 || m >= ms[i - 1]))).toBe(true);
    expect(r1.metrics.ttft_ms).toBeGreaterThan(0);
    expect(r1.token_ms).toHaveLength(r1.token_ids.length);
    expect(r1.ranks).toHaveLength(2);
    expect(r1.comm.some((c) => c.op === 'all_reduce' && c.bytes > 0)).toBe(true);
    expect(events.some((e) => e.kind === 'progress' && e.task === 'chat')).toBe(true);

    // same key: no new engine, same greedy answer
    const r2 = await ask('b', 'tp=2', { sampling: { greedy: true } });
    expect(started).toEqual(['tp=2']);
    expect(r2.token_ids).toEqual(r1.token_ids);

    // another spec: the tp=2 ranks close, dp=2 serves the turn from one replica
    const r3 = await ask('c', 'dp=2', { sampling: { greedy: true } });
    expect(closed).toEqual(['tp=2']);
    expect(started).toEqual(['tp=2', 'dp=2']);
    expect(r3.token_ids).toEqual(r1.token_ids);
    const workers = new Set(tokensOf('c').flatMap((e) => e.ranks!));
    expect(workers.size).toBe(1);
  });

  it('cancel ends the turn after the current step with finish_reason stop', async () => {
    const off = { n: 0 };
    const pending = chat.chat({ requestId: 'x', model: 'synth-llama-tiny', parallel: 'dp=2', messages: [{ role: 'user', content: 'long answer please' }], maxNewTokens: 200, sampling: { greedy: true }, stop: [] });
    while (tokensOf('x').length < 2 && off.n++ < 500) await new Promise((r) => setTimeout(r, 5));
    await chat.cancel('x');
    const r = await pending;
    expect(r.finish_reason).toBe('stop');
    expect(r.token_ids.length).toBeLessThan(200);
  });

  it('a stop string cuts the text and ends the turn', async () => {
    const free = await ask('s0', 'dp=2', { maxNewTokens: 12, sampling: { greedy: true } });
    const stopAt = free.text.trim().slice(2, 4);
    if (stopAt.length < 2) return expect.fail(`the tiny model answered too little text to test a stop string: ${JSON.stringify(free.text)}`);
    const r = await ask('s1', 'dp=2', { maxNewTokens: 12, sampling: { greedy: true }, stop: [stopAt] });
    expect(r.finish_reason).toBe('stop');
    expect(r.text).toBe(free.text.slice(0, free.text.indexOf(stopAt)));
  });
  it('a conversation near the end of the context answers in the room left (length); one past it is refused and the engine serves on', async () => {
    const { Engine } = await import('../../main/engine/host/engine');
    const msgs = [{ role: 'user' as const, content: 'What is tensor parallelism?' }];
    const P = chatPromptIds(msgs, (await Engine.prepareModel('synth-llama-tiny')).tokenizer).length;
    const evs: LabEvent[] = [];
    // an engine whose context leaves room for two new tokens after this prompt
    const small = createChat((e) => evs.push(e), { startEngine: async (o) => (await Engine.start({ ...o, threadsPerRank: 1, maxSeq: P + 1 })) as ChatEngine });
    try {
      const r = await small.chat({ requestId: 'c1', model: 'synth-llama-tiny', parallel: 'single', messages: msgs, maxNewTokens: 50, sampling: { greedy: true } });
      expect(r.prompt_ids).toHaveLength(P);
      expect(r.token_ids).toHaveLength(2);
      expect(r.finish_reason).toBe('length');
      const longer = [...msgs, { role: 'assistant' as const, content: r.text }, { role: 'user' as const, content: 'And pipeline parallelism?' }];
      await expect(small.chat({ requestId: 'c2', model: 'synth-llama-tiny', parallel: 'single', messages: longer, maxNewTokens: 5 })).rejects.toThrow(
        new RegExp(`^the conversation is \\d+ tokens, more than this engine's context of ${P + 1}; clear the chat`),
      );
      const again = await small.chat({ requestId: 'c3', model: 'synth-llama-tiny', parallel: 'single', messages: msgs, maxNewTokens: 50, sampling: { greedy: true } });
      expect(again.token_ids).toEqual(r.token_ids);
    } finally {
      await small.close();
    }
  });
});
