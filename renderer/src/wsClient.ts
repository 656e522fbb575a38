/**
 * LabApi over the web host's WebSocket (`/api`): the browser-side twin of the
 * preload. Requests carry ids and wait for their answer; events fan out to
 * subscribers; a closed socket fails what is pending and reopens on the next
 * call — or by itself, with backoff, while anyone listens to events (a
 * benchmark's progress must keep arriving after a dropped connection).
 */
import { LAB_API_VERSION, LAB_METHODS, type LabApi, type LabEvent, type LabMethod, type WireMessage, type WireRequest } from '../../main/lab/contract';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type SocketFactory = (url: string) => WebSocket;

export function connectWebSocketLab(url: string, open: SocketFactory = (u) => new WebSocket(u)): LabApi {
  const pending = new Map<number, Pending>();
  const listeners = new Set<(e: LabEvent) => void>();
  let nextId = 1;
  let socket: Promise<WebSocket> | null = null;
  let retries = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;

  /** Reopens the socket after a drop while there are event listeners (0.5 s, 1 s, 2 s … up to 10 s). */
  function keepListening(): void {
    if (!listeners.size || reconnectTimer || socket) return;
    const delay = Math.min(10_000, 500 * 2 ** retries++);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (socket || !listeners.size) return;
      socket = connect();
      socket.then(
        () => (retries = 0),
        () => undefined,
      );
    }, delay);
  }

  function connect(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = open(url);
      ws.onopen = () => resolve(ws);
      ws.onmessage = (m) => receive(JSON.parse(String(m.data)) as WireMessage);
      ws.onclose = () => {
        socket = null;
        reject(new Error('could not connect to the lab (is `lab serve` still running, and was the page opened with its token?)'));
        for (const p of pending.values()) p.reject(new Error('the connection to the lab closed'));
        pending.clear();
        keepListening();
      };
    });
  }

  function receive(m: WireMessage): void {
    if ('event' in m) return listeners.forEach((l) => l(m.event));
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error.message));
  }

  async function call<T>(method: LabMethod, ...params: unknown[]): Promise<T> {
    const ws = await (socket ??= connect());
    const id = nextId++;
    const req: WireRequest = { v: LAB_API_VERSION, id, method, params };
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify(req));
    });
  }

  const methods = Object.fromEntries(LAB_METHODS.map((m) => [m, (...args: unknown[]) => call(m, ...args)])) as Omit<LabApi, 'onEvent'>;
  return {
    ...methods,
    onEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
