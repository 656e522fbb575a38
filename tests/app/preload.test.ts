/** The preload (preload/index.ts) against a mocked electron: exactly the Lab API, one channel per method, errors unwrapped. */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { LAB_METHODS, type LabApi, type LabEvent } from '../../main/lab/contract';

const h = vi.hoisted(() => ({
  exposed: new Map<string, unknown>(),
  invoked: [] as { channel: string; args: unknown[] }[],
  listeners: new Map<string, Set<(...a: unknown[]) => void>>(),
  reply: (async () => undefined) as (channel: string, ...args: unknown[]) => Promise<unknown>,
}));

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => h.exposed.set(key, api) },
  ipcRenderer: {
    invoke: (channel: string, ...args: unknown[]) => {
      h.invoked.push({ channel, args });
      return h.reply(channel, ...args);
    },
    on: (channel: string, l: (...a: unknown[]) => void) => {
      if (!h.listeners.has(channel)) h.listeners.set(channel, new Set());
      h.listeners.get(channel)!.add(l);
    },
    removeListener: (channel: string, l: (...a: unknown[]) => void) => h.listeners.get(channel)?.delete(l),
  },
}));

let api: LabApi;
beforeAll(async () => {
  await import('../../preload/index');
  api = h.exposed.get('paralab') as LabApi;
});

describe('preload', () => {
  it('exposes window.paralab with exactly the Lab API, and nothing generic', () => {
    expect([...h.exposed.keys()]).toEqual(['paralab', 'paralabHost']);
    expect(Object.keys(api).sort()).toEqual([...LAB_METHODS, 'onEvent'].sort());
  });

  it('maps each method to its own channel with its request', async () => {
    h.reply = async (channel) => `answer from ${channel}`;
    await expect(api.info()).resolves.toBe('answer from paralab:info');
    await api.listModels({ paths: ['/m'] });
    await api.generate({ model: 'synth-llama-tiny', parallel: 'tp=2', maxNewTokens: 4 });
    expect(h.invoked).toEqual([
      { channel: 'paralab:info', args: [] },
      { channel: 'paralab:listModels', args: [{ paths: ['/m'] }] },
      { channel: 'paralab:generate', args: [{ model: 'synth-llama-tiny', parallel: 'tp=2', maxNewTokens: 4 }] },
    ]);
  });

  it("turns main's wrapped LabErrorPayload into the lab's own message", async () => {
    h.reply = async () => {
      throw new Error(`Error invoking remote method 'paralab:generate': Error: {"code":"unknown-preset","message":"unknown model 'x'"}`);
    };
    await expect(api.generate({ model: 'x', parallel: 'single', maxNewTokens: 1 })).rejects.toThrow(/^unknown model 'x'$/);
  });

  it('delivers paralab:event to subscribers and unsubscribes', () => {
    const got: LabEvent[] = [];
    const off = api.onEvent((e) => got.push(e));
    const e: LabEvent = { kind: 'log', level: 'warn', message: 'slow link' };
    h.listeners.get('paralab:event')!.forEach((l) => l({}, e));
    off();
    expect(h.listeners.get('paralab:event')!.size).toBe(0);
    expect(got).toEqual([e]);
  });

  it('exposes the host services on their own fixed channels, menu commands as events', async () => {
    const host = h.exposed.get('paralabHost') as Record<string, (...a: unknown[]) => unknown>;
    expect(Object.keys(host).sort()).toEqual(['onMenu', 'openFolder', 'saveFile']);
    h.invoked.length = 0;
    h.reply = async (channel) => `/picked/by/${channel}`;
    const file = { fileName: 'r.md', mime: 'text/markdown', encoding: 'utf8', data: '# r' };
    await expect(host.openFolder()).resolves.toBe('/picked/by/paralab-host:openFolder');
    await host.saveFile(file);
    expect(h.invoked).toEqual([
      { channel: 'paralab-host:openFolder', args: [] },
      { channel: 'paralab-host:saveFile', args: [file] },
    ]);
    const got: string[] = [];
    const off = host.onMenu((c: string) => got.push(c)) as () => void;
    h.listeners.get('paralab-host:menu')!.forEach((l) => l({}, 'view:lab'));
    off();
    expect(got).toEqual(['view:lab']);
    expect(h.listeners.get('paralab-host:menu')!.size).toBe(0);
  });
});
