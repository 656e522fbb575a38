/**
 * The renderer's one door to the lab. Inside Electron the preload provides
 * `window.paralab`; in a browser (web host) a WebSocket client implements the
 * same LabApi, authenticated with the `?token=` of the page URL. Stores call
 * `lab()`; components never touch either door.
 */
import type { LabApi } from '../../main/lab/contract';
import { connectWebSocketLab } from './wsClient';

export type Door = 'electron' | 'web';

let current: LabApi | null = null;

export function door(): Door {
  return window.paralab ? 'electron' : 'web';
}

function webSocketUrl(): string {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api?token=${encodeURIComponent(token)}`;
}

export function lab(): LabApi {
  return (current ??= window.paralab ?? connectWebSocketLab(webSocketUrl()));
}

/** Replace the door (tests, or a future remote lab). */
export function setLab(api: LabApi | null): void {
  current = api;
}
