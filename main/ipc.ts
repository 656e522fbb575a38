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

// ---------------------------------------------------------------------------
// The desktop host's own services (dialogs, menu), outside the Lab API; PDFs
// come from the lab's exportReport, which main gives Chromium's printToPDF.
// Same seam: main/index.ts passes Electron's dialog / BrowserWindow in; tests
// pass fakes. Channels are fixed; senders are checked like the Lab API's.
// ---------------------------------------------------------------------------

/** A report as the lab returns it (ReportFile in contract.ts). */
type ReportFileLike = { fileName: string; mime: string; encoding: 'utf8' | 'base64'; data: string };

export const HOST_CHANNELS = {
  openFolder: 'paralab-host:openFolder',
  saveFile: 'paralab-host:saveFile',
  menu: 'paralab-host:menu',
} as const;

export type MenuCommand = 'open-folder' | 'export-report' | `view:${string}`;

export interface HostServices {
  openFolder(): Promise<string | null>;
  saveFile(file: ReportFileLike): Promise<string | null>;
}

/** What the host services need from Electron and the file system. */
export interface HostDeps {
  showOpenDialog(o: { title: string; properties: string[] }): Promise<{ canceled: boolean; filePaths: string[] }>;
  showSaveDialog(o: { title: string; defaultPath: string; filters: { name: string; extensions: string[] }[] }): Promise<{ canceled: boolean; filePath?: string }>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** folder the save dialog starts in */
  documentsDir: string;
}

const MAX_REPORT_BYTES = 64 << 20;

/** A report file from the renderer, checked: plain file name, known encoding, bounded size. */
export function checkReportFile(f: unknown): ReportFileLike {
  const x = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
  const name = x['fileName'];
  if (typeof name !== 'string' || !name || /[\\/]/.test(name) || name.startsWith('.')) throw new Error('a report needs a plain file name (no folders)');
  if (x['encoding'] !== 'utf8' && x['encoding'] !== 'base64') throw new Error("a report's encoding must be 'utf8' or 'base64'");
  if (typeof x['data'] !== 'string' || x['data'].length > MAX_REPORT_BYTES) throw new Error('a report needs its data as a string of at most 64 MiB');
  return { fileName: name, mime: typeof x['mime'] === 'string' ? x['mime'] : 'application/octet-stream', encoding: x['encoding'], data: x['data'] };
}

export function reportFileBytes(f: ReportFileLike): Uint8Array {
  return f.encoding === 'base64' ? new Uint8Array(Buffer.from(f.data, 'base64')) : new Uint8Array(Buffer.from(f.data, 'utf8'));
}

export function createHostServices(d: HostDeps): HostServices {
  const ask = async (fileName: string): Promise<string | null> => {
    const ext = fileName.includes('.') ? fileName.slice(fileName.lastIndexOf('.') + 1) : '';
    const r = await d.showSaveDialog({ title: 'Save report', defaultPath: `${d.documentsDir}/${fileName}`, filters: ext ? [{ name: ext.toUpperCase(), extensions: [ext] }] : [] });
    return r.canceled || !r.filePath ? null : r.filePath;
  };
  return {
    async openFolder() {
      const r = await d.showOpenDialog({ title: 'Open a model folder', properties: ['openDirectory'] });
      return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
    },
    async saveFile(file) {
      const f = checkReportFile(file);
      const path = await ask(f.fileName);
      if (path) await d.writeFile(path, reportFileBytes(f));
      return path;
    },
  };
}

/** Registers the host channels (checked senders); returns a function that removes them. */
export function wireHostIpc(ipc: IpcMainLike, host: HostServices, isTrustedSender: (frame: FrameLike) => boolean): () => void {
  const guard =
    <A extends unknown[]>(name: string, fn: (...a: A) => Promise<unknown>) =>
    async (event: InvokeEventLike, ...args: unknown[]) => {
      if (!event.senderFrame || !isTrustedSender(event.senderFrame)) throw ipcError({ code: 'unauthorized', message: `${name} refused: the sender is not a ParaLab window` });
      try {
        return await fn(...(args as A));
      } catch (err) {
        throw ipcError(toLabErrorPayload(err));
      }
    };
  ipc.handle(HOST_CHANNELS.openFolder, guard(HOST_CHANNELS.openFolder, () => host.openFolder()));
  ipc.handle(HOST_CHANNELS.saveFile, guard(HOST_CHANNELS.saveFile, (f: unknown) => host.saveFile(f as ReportFileLike)));
  return () => {
    ipc.removeHandler(HOST_CHANNELS.openFolder);
    ipc.removeHandler(HOST_CHANNELS.saveFile);
  };
}

/** A menu item the way Electron's Menu.buildFromTemplate takes it (the subset used here). */
export interface MenuItemLike {
  label?: string;
  role?: string;
  type?: 'separator' | 'submenu' | 'normal';
  accelerator?: string;
  click?: () => void;
  submenu?: MenuItemLike[];
}

/** Menu labels in the app's two languages (Electron's roles translate themselves). */
export const MENU_LABELS = {
  en: { file: 'File', view: 'View', open: 'Open Model Folder…', export: 'Export Report…', views: { models: 'Models', lab: 'Lab', compare: 'Compare', chat: 'Chat', reports: 'Reports', learn: 'Learn' } },
  'zh-CN': { file: '文件', view: '视图', open: '打开模型文件夹…', export: '导出报告…', views: { models: '模型', lab: '实验', compare: '对比', chat: '对话', reports: '报告', learn: '学习' } },
};
export type MenuLabels = (typeof MENU_LABELS)['en'];

/** The OS locale (app.getLocale()) → the menu's language, like the renderer's default. */
export function menuLabelsFor(osLocale: string): MenuLabels {
  return osLocale.toLowerCase().startsWith('zh') ? MENU_LABELS['zh-CN'] : MENU_LABELS.en;
}

/** The native menu: File (open folder, export report), View (the six views, reload, zoom), Window, Help. */
export function menuTemplate(send: (cmd: MenuCommand) => void, platform: string, labels: MenuLabels = MENU_LABELS.en): MenuItemLike[] {
  const views = ['models', 'lab', 'compare', 'chat', 'reports', 'learn'];
  return [
    ...(platform === 'darwin' ? [{ role: 'appMenu' }] : []),
    {
      label: labels.file,
      submenu: [
        { label: labels.open, accelerator: 'CmdOrCtrl+O', click: () => send('open-folder') },
        { label: labels.export, accelerator: 'CmdOrCtrl+E', click: () => send('export-report') },
        { type: 'separator' },
        { role: platform === 'darwin' ? 'close' : 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: labels.view,
      submenu: [
        ...views.map((v, i) => ({ label: labels.views[v as keyof MenuLabels['views']] ?? v, accelerator: `CmdOrCtrl+${i + 1}`, click: () => send(`view:${v}`) })),
        { type: 'separator' },
        { role: 'reload' },
        { role: 'toggleDevTools' },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    { role: 'help', submenu: [{ role: 'about' }] },
  ];
}
