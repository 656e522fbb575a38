// @vitest-environment happy-dom
/** ChatView against a scripted lab: streamed tokens with timings and ranks, stop, regenerate, switching the spec mid-conversation, errors. */
import { describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import ChatView from '../../renderer/src/views/ChatView.vue';
import { tokenTimings } from '../../renderer/src/stores/chat';
import type { ChatRequest, GenerateResult } from '../../main/lab/contract';
import { scriptedLab } from './labFixtures';
import { useScriptedLab } from './mountHelpers';

vi.mock('vue-echarts', async () => (await import('./mountHelpers')).chartStub());

let s: ReturnType<typeof scriptedLab>;
useScriptedLab((fresh) => (s = fresh));

const result = (text: string, finish: GenerateResult['finish_reason'] = 'eos'): GenerateResult => ({
  token_ids: [1, 2, 3],
  text,
  finish_reason: finish,
  prompt_ids: [9],
  metrics: { prompt_tokens: 1, output_tokens: 3, load_ms: 1, ttft_ms: 12, tpot_ms: 4, e2el_ms: 20, prefill_tok_s: 1, output_tok_s: 1 },
  ranks: [],
  comm: [],
});

/** A chat turn that streams the pieces as token events, then waits for `release`. */
function streaming(pieces: string[], ranks: number[]) {
  let release!: (r: GenerateResult) => void;
  s.onChat(async (req: ChatRequest) => {
    pieces.forEach((p, i) => s.emit({ kind: 'token', requestId: req.requestId, tokenId: i + 10, text: p, ms: 12 + i * 4, ranks }));
    return new Promise<GenerateResult>((r) => (release = r));
  });
  return (r: GenerateResult) => release(r);
}

async function say(w: ReturnType<typeof mount>, text: string) {
  await w.get('[data-testid="chat-input"]').setValue(text);
  await w.get('form').trigger('submit');
  await flushPromises();
}

describe('ChatView', () => {
  it('streams tokens into the answer with TTFT, inter-token latency and the ranks that worked', async () => {
    const w = mount(ChatView);
    await flushPromises();
    const done = streaming(['Ten', 'sor', ' split'], [0, 1]);
    await say(w, 'What is TP?');
    expect(s.calls.chat[0]).toMatchObject({ model: 'synth-llama-tiny', parallel: 'tp=2', messages: [{ role: 'user', content: 'What is TP?' }], sampling: { greedy: true } });
    const msgs = w.findAll('[data-testid="chat-msg"]');
    expect(msgs.at(-1)!.get('[data-testid="chat-text"]').text()).toBe('Tensor split');
    expect(w.findAll('[data-testid="token-cell"]')).toHaveLength(3);
    expect(w.get('[data-testid="ttft"]').text()).toBe('12.0');
    expect(w.get('[data-testid="itl"]').text()).toBe('4.0');
    expect(w.get('[data-testid="token-stats"]').text()).toContain('0,1');
    expect(w.find('[data-testid="chat-stop"]').exists()).toBe(true);
    done(result('Tensor split.'));
    await flushPromises();
    expect(w.findAll('[data-testid="chat-text"]').at(-1)!.text()).toBe('Tensor split.');
    expect(w.get('[data-testid="chat-finish"]').text()).toBe('ended at end of sequence · prompt 1 tokens');
    expect(w.find('[data-testid="chat-stop"]').exists()).toBe(false);
  });

  it('stop cancels the turn by its request id', async () => {
    const w = mount(ChatView);
    const done = streaming(['a'], [0]);
    await say(w, 'hi');
    await w.get('[data-testid="chat-stop"]').trigger('click');
    expect(s.calls.cancel).toEqual([s.calls.chat[0].requestId]);
    done(result('a', 'stop'));
    await flushPromises();
    expect(w.get('[data-testid="chat-finish"]').text()).toContain('stopped');
  });

  it('continues the same conversation on another spec, and regenerates the last answer', async () => {
    const w = mount(ChatView);
    s.onChat(async () => result('first answer'));
    await say(w, 'one');
    await w.get('[data-testid="chat-spec"]').setValue('pp=2');
    s.onChat(async () => result('second answer'));
    await say(w, 'two');
    expect(s.calls.chat[1].parallel).toBe('pp=2');
    expect(s.calls.chat[1].messages).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'two' },
    ]);
    expect(w.findAll('[data-role="assistant"] .spec').map((e) => e.text())).toEqual(['tp=2', 'pp=2']);
    s.onChat(async () => result('second again'));
    await w.get('[data-testid="chat-regenerate"]').trigger('click');
    await flushPromises();
    expect(s.calls.chat[2].messages).toEqual(s.calls.chat[1].messages);
    expect(w.findAll('[data-testid="chat-text"]').map((e) => e.text())).toEqual(['one', 'first answer', 'two', 'second again']);
  });

  it("shows the engine's error under the turn, and leaves it out of the next prompt", async () => {
    const w = mount(ChatView);
    s.onChat(async () => {
      throw new Error('tp=3 does not divide 8 attention heads; use tp ∈ {1,2,4,8}');
    });
    await say(w, 'hi');
    expect(w.get('[data-testid="chat-error"]').text()).toContain('tp=3 does not divide');
    s.onChat(async () => result('ok'));
    await say(w, 'again');
    expect(s.calls.chat[1].messages).toEqual([{ role: 'user', content: 'hi' }, { role: 'user', content: 'again' }]);
  });

  it('computes TTFT and inter-token latency from token times', () => {
    expect(tokenTimings([])).toEqual({ ttft: null, itl: [], meanItl: null });
    expect(tokenTimings([{ ms: 10 }, { ms: 13 }, { ms: 19 }])).toEqual({ ttft: 10, itl: [3, 6], meanItl: 4.5 });
  });
});

describe('ChatView spec check', () => {
  it("checks the chat's spec as it is typed and blocks sending a spec the engine refuses", async () => {
    const w = mount(ChatView);
    await flushPromises();
    expect(s.calls.checkSpec).toEqual(['tp=2']);
    expect(w.get('[data-testid="chat-spec-ok"]').text()).toBe('2 ranks');
    await w.get('[data-testid="chat-spec"]').setValue('tp=3');
    await new Promise((r) => setTimeout(r, 200));
    await flushPromises();
    expect(w.get('[data-testid="chat-spec-message"]').text()).toContain('tp=3 does not divide 8 attention heads');
    await w.get('[data-testid="chat-input"]').setValue('hi');
    expect((w.get('[data-testid="chat-send"]').element as HTMLButtonElement).disabled).toBe(true);
  });
});

describe('ChatView while a benchmark runs', () => {
  it('warns that chatting now perturbs the benchmark', async () => {
    const w = mount(ChatView);
    await flushPromises();
    expect(w.find('[data-testid="chat-bench-warning"]').exists()).toBe(false);
    s.emit({ kind: 'job', job: { jobId: 'j', state: 'running', specs: ['single', 'tp=2'], done: 0, runIds: [], message: 'starting', error: null } });
    await flushPromises();
    expect(w.get('[data-testid="chat-bench-warning"]').text()).toContain('benchmark is running');
    s.emit({ kind: 'job', job: { jobId: 'j', state: 'done', specs: ['single', 'tp=2'], done: 2, runIds: [], message: 'done', error: null } });
    await flushPromises();
    expect(w.find('[data-testid="chat-bench-warning"]').exists()).toBe(false);
  });
});
