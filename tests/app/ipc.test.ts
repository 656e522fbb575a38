/** Electron IPC wiring (main/ipc.ts) driven through a fake ipcMain and fake frames: no Electron binary needed. */
import { describe, expect, it } from 'vitest';
import { LAB_METHODS, type LabEvent } from '../../main/lab/contract';
import { trustedSenderCheck, wireLabIpc, type InvokeEventLike, type IpcMainLike } from '../../main/ipc';
import { FAKE_MODEL, fakeLab } from './fakeLab';

/** Records handlers like ipcMain; `invoke` behaves like ipcRenderer.invoke (no handler → rejection). */
function fakeIpcMain() {
  const handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => unknown>();
  const ipc: IpcMainLike = {
    handle: (channel, listener) => {
      if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
      handlers.set(channel, listener);
    },
    removeHandler: (channel) => void handlers.delete(channel),
  };
  const invoke = async (url: string | null, channel: string, ...args: unknown[]) => {
    const h = handlers.get(channel);
    if (!h) throw new Error(`No handler registered for '${channel}'`);
    return h({ senderFrame: url === null ? null : { url } }, ...args);
  };
  return { ipc, handlers, invoke };
}

const PAGE = 'file:///opt/ParaLab/resources/app/out/renderer/index.html';
const trusted = trustedSenderCheck(PAGE, 'http://localhost:5173/');

function setup() {
  const f = fakeIpcMain();
  const lab = fakeLab();
  const sent: LabEvent[] = [];
  const dispose = wireLabIpc(f.ipc, lab, trusted, (e) => sent.push(e));
  return { ...f, lab, sent, dispose };
}

describe('wireLabIpc', () => {
  it('registers exactly one channel per Lab API method', () => {
    const { handlers } = setup();
    expect([...handlers.keys()].sort()).toEqual(LAB_METHODS.map((m) => `paralab:${m}`).sort());
  });

  it('answers a trusted sender, passing the request through', async () => {
    const { invoke, lab } = setup();
    await expect(invoke(PAGE, 'paralab:listModels', { paths: [] })).resolves.toEqual([FAKE_MODEL]);
    await expect(invoke(`${PAGE}?x=1#models`, 'paralab:info')).resolves.toMatchObject({ cpus: 2 });
    await expect(invoke('http://localhost:5173/index.html', 'paralab:info')).resolves.toMatchObject({ apiVersion: 1 });
    expect(lab.calls.map((c) => c.method)).toEqual(['listModels', 'info', 'info']);
  });

  it('refuses untrusted senders before reaching the lab', async () => {
    const { invoke, lab } = setup();
    for (const url of ['https://evil.example/', 'file:///tmp/evil.html', 'http://localhost:5174/', 'not a url', null]) {
      await expect(invoke(url, 'paralab:info')).rejects.toThrow(/"code":"unauthorized"/);
    }
    expect(lab.calls).toEqual([]);
  });

  it('rejects with a LabErrorPayload-shaped message when the lab throws', async () => {
    const { invoke } = setup();
    const err = await invoke(PAGE, 'paralab:generate', { model: 'nope', parallel: 'single', maxNewTokens: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(JSON.parse((err as Error).message)).toEqual({ code: 'unknown-preset', message: "unknown model 'nope'" });
  });

  it('has no channel for anything outside the contract', async () => {
    const { invoke } = setup();
    for (const channel of ['paralab:onEvent', 'paralab:constructor', 'paralab:__proto__', 'invoke', 'paralab:event']) {
      await expect(invoke(PAGE, channel)).rejects.toThrow(/No handler registered/);
    }
  });

  it('forwards lab events and undoes everything on dispose', () => {
    const { lab, sent, dispose, handlers } = setup();
    const e: LabEvent = { kind: 'log', level: 'info', message: 'hello' };
    lab.emit(e);
    expect(sent).toEqual([e]);
    dispose();
    expect(handlers.size).toBe(0);
    expect(lab.listenerCount()).toBe(0);
  });
});
