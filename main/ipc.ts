/**
 * Electron IPC wiring of the Lab API, kept free of the electron import so
 * tests can drive it with a fake ipcMain (the adapter seam below).
 *
 * One `handle('paralab:<method>')` per entry of LAB_METHODS — nothing else can
 * be invoked. Every call checks the sending frame; failures reject with an
 * Error whose message is a JSON LabErrorPayload, which the preload unwraps.
 */
import { LAB_METHODS, toLabErrorPayload, type LabApi, type LabErrorPayload, type LabEvent, type LabMethod } from './lab/contract';

export const IPC_PREFIX = 'paralab:';
export const IPC_EVENT_CHANNEL = 'paralab:event';

/** The part of Electron's WebFrameMain we look at. */
export interface FrameLike {
  url: string;
}
export interface InvokeEventLike {
  senderFrame: FrameLike | null;
}
/** The part of Electron's ipcMain we use. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: any[]) => unknown): void;
  removeHandler(channel: string): void;
}

export function ipcChannel(method: LabMethod): string {
  return IPC_PREFIX + method;
}

export function ipcError(payload: LabErrorPayload): Error {
  return new Error(JSON.stringify(payload));
}

/** Registers the handlers and forwards lab events; returns a function that undoes both. */
export function wireLabIpc(
  ipc: IpcMainLike,
  lab: LabApi,
  isTrustedSender: (frame: FrameLike) => boolean,
  sendEvent: (e: LabEvent) => void,
): () => void {
  for (const method of LAB_METHODS) {
    ipc.handle(ipcChannel(method), async (event, ...args) => {
      const frame = event.senderFrame;
      if (!frame || !isTrustedSender(frame)) {
        throw ipcError({ code: 'unauthorized', message: `paralab:${method} refused: the sender is not a ParaLab window` });
      }
      try {
        return await (lab[method] as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (err) {
        throw ipcError(toLabErrorPayload(err));
      }
    });
  }
  const unsubscribe = lab.onEvent(sendEvent);
  return () => {
    unsubscribe();
    for (const method of LAB_METHODS) ipc.removeHandler(ipcChannel(method));
  };
}

/** A sender is trusted when its URL is the packaged renderer page or lies on the dev server's origin. */
export function trustedSenderCheck(rendererFileUrl: string, devServerUrl?: string): (frame: FrameLike) => boolean {
  const page = withoutQuery(rendererFileUrl);
  const devOrigin = devServerUrl ? new URL(devServerUrl).origin : null;
  return (frame) => {
    const url = withoutQuery(frame.url);
    if (url === null) return false;
    if (url.startsWith('file:')) return url === page;
    return devOrigin !== null && new URL(url).origin === devOrigin;
  };
}

function withoutQuery(href: string): string | null {
  try {
    const url = new URL(href);
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return null;
  }
}
