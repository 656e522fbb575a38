/**
 * main/index.ts against a mocked `electron` module (the binary cannot be
 * downloaded here): the secure window settings, navigation and pop-up
 * lockdown, the CSP header, every IPC channel, the native menu and its
 * commands, and a dialog reached through a checked IPC call.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { LAB_METHODS } from '../../main/lab/contract';

type Listener = (...a: any[]) => unknown;
const h = vi.hoisted(() => ({
  windows: [] as any[],
  handlers: new Map<string, Listener>(),
  menu: null as any,
  headerHook: null as Listener | null,
  openDialogs: [] as unknown[],
  appEvents: new Map<string, Listener>(),
}));

vi.mock('electron', () => {
  class BrowserWindow {
    static getAllWindows = () => h.windows;
    static getFocusedWindow = () => h.windows[0] ?? null;
    listeners = new Map<string, Listener>();
    openHandler: Listener | null = null;
    sent: unknown[][] = [];
    loaded: string | null = null;
    webContents = {
      setWindowOpenHandler: (f: Listener) => (this.openHandler = f),
      on: (ev: string, f: Listener) => this.listeners.set(ev, f),
      send: (...a: unknown[]) => this.sent.push(a),
    };
    constructor(readonly options: any) {
      h.windows.push(this);
    }
    once() {}
    loadFile(f: string) {
      this.loaded = f;
      return Promise.resolve();
    }
    loadURL(u: string) {
      this.loaded = u;
      return Promise.resolve();
    }
  }
  return {
    app: {
      isPackaged: false,
      whenReady: () => Promise.resolve(),
      on: (ev: string, f: Listener) => h.appEvents.set(ev, f),
      getVersion: () => '9.9.9',
      getLocale: () => 'en-US',
      getPath: () => '/home/u/Documents',
      quit: () => {},
    },
    BrowserWindow,
    Menu: { buildFromTemplate: (t: unknown) => t, setApplicationMenu: (m: unknown) => (h.menu = m) },
    ipcMain: { handle: (c: string, f: Listener) => h.handlers.set(c, f), removeHandler: (c: string) => h.handlers.delete(c) },
    session: { defaultSession: { webRequest: { onHeadersReceived: (f: Listener) => (h.headerHook = f) } } },
    dialog: {
      showOpenDialog: async (...a: unknown[]) => (h.openDialogs.push(a), { canceled: false, filePaths: ['/models/Qwen2.5-0.5B'] }),
      showSaveDialog: async () => ({ canceled: true }),
    },
  };
});

let page: string;
beforeAll(async () => {
  delete process.env['ELECTRON_RENDERER_URL'];
  await import('../../main/index');
  await new Promise((r) => setTimeout(r, 0));
  page = `file://${h.windows[0].loaded}`;
});

describe('Electron main wiring', () => {
  it('opens one window with the secure settings and the preload', () => {
    expect(h.windows).toHaveLength(1);
    const w = h.windows[0];
    expect(w.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    expect(w.options.webPreferences.preload).toMatch(/preload[\\/]index\.js$/);
    expect(w.loaded).toMatch(/renderer[\\/]index\.html$/);
  });

  it('denies pop-ups and navigation away from the app page', () => {
    const w = h.windows[0];
    expect(w.openHandler!({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });
    const nav = (url: string) => {
      let prevented = false;
      w.listeners.get('will-navigate')!({ preventDefault: () => (prevented = true) }, url);
      return prevented;
    };
    expect(nav('https://evil.example/')).toBe(true);
    expect(nav(page)).toBe(false);
  });

  it('adds the CSP header to the app page only', () => {
    const run = (url: string) => {
      let out: any;
      h.headerHook!({ url, responseHeaders: {} }, (r: any) => (out = r));
      return out.responseHeaders['Content-Security-Policy'];
    };
    expect(run(page)[0]).toContain("script-src 'self'");
    expect(run('https://example.com/')).toBeUndefined();
  });

  it('registers one channel per Lab API method plus the host dialogs, and nothing else', () => {
    expect([...h.handlers.keys()].sort()).toEqual([...LAB_METHODS.map((m) => `paralab:${m}`), 'paralab-host:openFolder', 'paralab-host:saveFile'].sort());
  });

  it('opens the folder dialog for the app page only', async () => {
    const open = h.handlers.get('paralab-host:openFolder')!;
    await expect(open({ senderFrame: { url: page } })).resolves.toBe('/models/Qwen2.5-0.5B');
    await expect(open({ senderFrame: { url: 'https://evil.example/' } })).rejects.toThrow(/unauthorized/);
    expect(h.openDialogs).toHaveLength(1);
  });

  it('sets the native menu; its commands reach the window', () => {
    const items = (h.menu as any[]).flatMap((m) => [m, ...(m.submenu ?? [])]);
    items.find((i) => i.label === 'Open Model Folder…').click();
    items.find((i) => i.label === 'Compare').click();
    expect(h.windows[0].sent).toEqual([
      ['paralab-host:menu', 'open-folder'],
      ['paralab-host:menu', 'view:compare'],
    ]);
    expect(h.appEvents.has('before-quit')).toBe(true);
  });
});
