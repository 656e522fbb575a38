/**
 * The Lab API over one WebSocket connection (the web host's `/api`).
 *
 *   client → host  {v:1, id, method, params: [...args]}
 *   host → client  {v:1, id, ok:true, result} | {v:1, id, ok:false, error:{code,message}}
 *                  {v:1, event}            (every LabEvent, while connected)
 *
 * Only LAB_METHODS can be called; anything else is answered with an error.
 */
import type { WebSocket } from 'ws';
import { LAB_API_VERSION, LAB_METHODS, toLabErrorPayload, type LabApi, type LabErrorPayload, type LabMethod, type WireMessage } from '../lab/contract';

const METHODS: ReadonlySet<string> = new Set(LAB_METHODS);

type Parsed = { id: number; method: LabMethod; params: unknown[] } | { id: number; error: LabErrorPayload };

/** Validates one raw message into a call, or an error to send back under the id it carried (-1 if none). */
export function parseRequest(raw: string): Parsed {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return { id: -1, error: { code: 'bad_request', message: 'the message is not JSON' } };
  }
  const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>;
  const id = typeof m['id'] === 'number' && Number.isInteger(m['id']) ? (m['id'] as number) : -1;
  if (m['v'] !== LAB_API_VERSION) return { id, error: { code: 'bad_request', message: `expected {v:${LAB_API_VERSION}}, got v=${String(m['v'])}` } };
  if (id < 0) return { id, error: { code: 'bad_request', message: 'a request needs a non-negative integer id' } };
  const method = m['method'];
  if (typeof method !== 'string' || !METHODS.has(method)) {
    return { id, error: { code: 'unknown_method', message: `unknown method ${JSON.stringify(method)}; one of ${LAB_METHODS.join(', ')}` } };
  }
  const params = m['params'] ?? [];
  if (!Array.isArray(params)) return { id, error: { code: 'bad_request', message: 'params must be an array of arguments' } };
  return { id, method: method as LabMethod, params };
}

/**
 * Serves one connection until it closes. Whatever the client sends (a frame
 * over the host's maxPayload, bad UTF-8, a broken frame) ends at most this
 * connection: the ws library closes it with the matching code (1009 "message
 * too big", 1007, 1002) and reports an 'error' here, which must be handled
 * or Node would end the whole host.
 */
export function serveLabSocket(ws: WebSocket, lab: LabApi, log: (message: string) => void = () => undefined): void {
  const send = (m: WireMessage) => {
    if (ws.readyState !== ws.OPEN) return;
    let text: string;
    try {
      text = JSON.stringify(m);
    } catch (e) {
      // a result that cannot be serialised is a bug of the lab, reported to the caller, not a crash
      if ('id' in m) text = JSON.stringify({ v: LAB_API_VERSION, id: m.id, ok: false, error: { code: 'internal', message: `the reply could not be serialised: ${(e as Error).message}` } });
      else return;
    }
    ws.send(text, () => undefined);
  };
  const unsubscribe = lab.onEvent((event) => send({ v: LAB_API_VERSION, event }));
  ws.on('close', unsubscribe);
  ws.on('error', (err) => log(`a Lab API client was disconnected: ${err.message}`));
  ws.on('message', async (data, isBinary) => {
    const req = isBinary ? { id: -1, error: { code: 'bad_request', message: 'send text frames' } } : parseRequest(data.toString());
    if ('error' in req) return send({ v: LAB_API_VERSION, id: req.id, ok: false, error: req.error });
    try {
      const result = await (lab[req.method] as (...a: unknown[]) => Promise<unknown>)(...req.params);
      send({ v: LAB_API_VERSION, id: req.id, ok: true, result });
    } catch (err) {
      send({ v: LAB_API_VERSION, id: req.id, ok: false, error: toLabErrorPayload(err) });
    }
  });
}
