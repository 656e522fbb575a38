// @vitest-environment happy-dom
/** The browser's LabApi over a WebSocket, against a scripted fake socket: ids, results, errors, events, disconnects. */
import { describe, expect, it, vi } from 'vitest';
import { connectWebSocketLab } from '../../renderer/src/wsClient';
import type { LabEvent, WireRequest } from '../../main/lab/contract';

class FakeSocket {
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  sent: WireRequest[] = [];
  constructor(readonly url: string) {
    queueMicrotask(() => this.onopen?.());
  }
  send(text: string) {
    this.sent.push(JSON.parse(text) as WireRequest);
  }
  reply(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}

function setup() {
  const sockets: FakeSocket[] = [];
  const lab = connectWebSocketLab('ws://127.0.0.1:1/api?token=t', (u) => {
    const s = new FakeSocket(u);
    sockets.push(s);
    return s as unknown as WebSocket;
  });
  return { lab, sockets };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('connectWebSocketLab', () => {
  it('sends versioned requests and matches answers by id', async () => {
    const { lab, sockets } = setup();
    const a = lab.listModels({ paths: ['/m'] });
    const b = lab.info();
    await tick();
    const [s] = sockets;
    expect(s.url).toBe('ws://127.0.0.1:1/api?token=t');
    expect(s.sent).toEqual([
      { v: 1, id: 1, method: 'listModels', params: [{ paths: ['/m'] }] },
      { v: 1, id: 2, method: 'info', params: [] },
    ]);
    s.reply({ v: 1, id: 2, ok: true, result: { cpus: 2 } });
    s.reply({ v: 1, id: 1, ok: false, error: { code: 'io', message: '/m: folder not found' } });
    await expect(b).resolves.toEqual({ cpus: 2 });
    await expect(a).rejects.toThrow('/m: folder not found');
    expect(sockets).toHaveLength(1);
  });

  it('delivers events to subscribers until they unsubscribe', async () => {
    const { lab, sockets } = setup();
    const got: LabEvent[] = [];
    const off = lab.onEvent((e) => got.push(e));
    void lab.info();
    await tick();
    const e: LabEvent = { kind: 'progress', task: 'load', done: 1, total: 2, message: 'half' };
    sockets[0].reply({ v: 1, event: e });
    off();
    sockets[0].reply({ v: 1, event: e });
    expect(got).toEqual([e]);
  });

  it('fails pending calls when the socket closes, and reconnects on the next call', async () => {
    const { lab, sockets } = setup();
    const pending = lab.info();
    await tick();
    sockets[0].onclose?.();
    await expect(pending).rejects.toThrow('closed');
    const again = lab.info();
    await tick();
    expect(sockets).toHaveLength(2);
    sockets[1].reply({ v: 1, id: 2, ok: true, result: 'ok' });
    await expect(again).resolves.toBe('ok');
  });
});

describe('connectWebSocketLab keeps the event stream', () => {
  it('reopens a dropped socket by itself while someone listens, with backoff', async () => {
    vi.useFakeTimers();
    try {
      const { lab, sockets } = setup();
      const got: LabEvent[] = [];
      lab.onEvent((e) => got.push(e));
      void lab.info().catch(() => undefined);
      await vi.advanceTimersByTimeAsync(0);
      sockets[0].onclose?.();
      await vi.advanceTimersByTimeAsync(499);
      expect(sockets).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2);
      expect(sockets).toHaveLength(2);
      const e: LabEvent = { kind: 'job', job: { jobId: 'j', state: 'done', specs: ['single'], done: 1, runIds: ['r'], message: 'done', error: null } };
      sockets[1].reply({ v: 1, event: e });
      expect(got).toEqual([e]);
      // a reopen that worked resets the backoff to 0.5 s
      sockets[1].onclose?.();
      await vi.advanceTimersByTimeAsync(501);
      expect(sockets).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not reopen when nobody listens', async () => {
    vi.useFakeTimers();
    try {
      const { lab, sockets } = setup();
      void lab.info().catch(() => undefined);
      await vi.advanceTimersByTimeAsync(0);
      sockets[0].onclose?.();
      await vi.advanceTimersByTimeAsync(20_000);
      expect(sockets).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
