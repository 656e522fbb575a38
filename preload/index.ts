/**
 * Preload (sandboxed, CommonJS): exposes exactly the Lab API as
 * `window.paralab` — one typed function per method, never a generic invoke —
 * and the desktop host's services (dialogs, menu) as `window.paralabHost`.
 * Errors from main arrive as "Error invoking remote method …: Error: {json}";
 * they are unwrapped here into a plain Error carrying the lab's message.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { LAB_METHODS, type LabApi, type LabErrorPayload, type LabEvent, type LabMethod, type ReportFile } from '../main/lab/contract';

function unwrap(err: unknown): Error {
  const text = err instanceof Error ? err.message : String(err);
  const json = text.slice(text.indexOf('{'));
  try {
    const payload = JSON.parse(json) as LabErrorPayload;
    return new Error(payload.message);
  } catch {
    return new Error(text);
  }
}

function call<T>(channel: string, ...args: unknown[]): Promise<T> {
  return ipcRenderer.invoke(channel, ...args).catch((err: unknown) => {
    throw unwrap(err);
  });
}

// One function per method of the contract, each bound to its own channel.
const methods = Object.fromEntries(LAB_METHODS.map((m: LabMethod) => [m, (...args: unknown[]) => call(`paralab:${m}`, ...args)])) as Omit<LabApi, 'onEvent'>;

const api: LabApi = {
  ...methods,
  onEvent(listener: (e: LabEvent) => void) {
    const handler = (_e: IpcRendererEvent, event: LabEvent) => listener(event);
    ipcRenderer.on('paralab:event', handler);
    return () => void ipcRenderer.removeListener('paralab:event', handler);
  },
};

contextBridge.exposeInMainWorld('paralab', api);

/** The desktop host's own services (not part of the Lab API): dialogs and menu commands. */
const host = {
  openFolder: (): Promise<string | null> => call('paralab-host:openFolder'),
  saveFile: (file: ReportFile): Promise<string | null> => call('paralab-host:saveFile', file),
  onMenu(listener: (command: string) => void) {
    const handler = (_e: IpcRendererEvent, command: string) => listener(command);
    ipcRenderer.on('paralab-host:menu', handler);
    return () => void ipcRenderer.removeListener('paralab-host:menu', handler);
  },
};

contextBridge.exposeInMainWorld('paralabHost', host);
