/**
 * Electron entry: app lifecycle, one secure window, the CSP, navigation and
 * pop-up lockdown, the Lab API and the host services (open-folder / save
 * dialogs, printToPDF for reports) wired to IPC (main/ipc.ts), the native menu. Everything the
 * lab does lives in main/lab and main/engine, which never import electron.
 */
import { app, BrowserWindow, Menu, dialog, ipcMain, session, type MenuItemConstructorOptions } from 'electron';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CSP_HEADER } from './csp';
import { HOST_CHANNELS, IPC_EVENT_CHANNEL, createHostServices, menuLabelsFor, menuTemplate, trustedSenderCheck, wireHostIpc, wireLabIpc, type MenuCommand } from './ipc';
import { createLab } from './lab/lab';
import { closeAllChats } from './lab/chat';

const rendererFile = join(__dirname, '../renderer/index.html');
const devServerUrl = app.isPackaged ? undefined : process.env['ELECTRON_RENDERER_URL'];
/** The window icon (Linux; macOS and Windows take theirs from the bundle): resources/icons, shipped as extraResources when packaged. */
const iconFile = app.isPackaged ? join(process.resourcesPath ?? '', 'icons', 'icon.png') : join(__dirname, '../../resources/icons/icon.png');
/** true for our own page (packaged file or dev server), for IPC senders and navigations alike */
const isAppPage = trustedSenderCheck(pathToFileURL(rendererFile).href, devServerUrl);

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'ParaLab',
    icon: iconFile,
    backgroundColor: '#111418',
    webPreferences: {
      preload: join(__dirname, '../preload/index.js'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  win.once('ready-to-show', () => win.show());
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (event, url) => {
    if (!isAppPage({ url })) event.preventDefault();
  });
  void (devServerUrl ? win.loadURL(devServerUrl) : win.loadFile(rendererFile));
  return win;
}

/** Menu commands go to the focused ParaLab window (the renderer acts on them: dialogs, view switches). */
function sendMenu(cmd: MenuCommand): void {
  (BrowserWindow.getFocusedWindow() ?? BrowserWindow.getAllWindows()[0])?.webContents.send(HOST_CHANNELS.menu, cmd);
}

/**
 * An HTML report → PDF bytes with Chromium's printToPDF, in a hidden window
 * that runs no script, has no preload and cannot navigate anywhere.
 */
async function renderPdf(html: string): Promise<Uint8Array> {
  const win = new BrowserWindow({ show: false, webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false, javascript: false } });
  try {
    win.webContents.on('will-navigate', (e) => e.preventDefault());
    win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
    await win.loadURL(`data:text/html;charset=utf-8;base64,${Buffer.from(html, 'utf8').toString('base64')}`);
    return new Uint8Array(await win.webContents.printToPDF({ printBackground: true, pageSize: 'A4' }));
  } finally {
    win.destroy();
  }
}

void app.whenReady().then(() => {
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    const headers = details.responseHeaders ?? {};
    if (isAppPage({ url: details.url })) headers['Content-Security-Policy'] = [CSP_HEADER];
    callback({ responseHeaders: headers });
  });
  app.on('web-contents-created', (_e, contents) => contents.on('will-attach-webview', (ev) => ev.preventDefault()));
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate(sendMenu, process.platform, menuLabelsFor(app.getLocale())) as MenuItemConstructorOptions[]));

  const lab = createLab({ version: app.getVersion(), printPdf: async (html) => Buffer.from(await renderPdf(html)) });
  const broadcast = (e: unknown) => BrowserWindow.getAllWindows().forEach((w) => w.webContents.send(IPC_EVENT_CHANNEL, e));
  wireLabIpc(ipcMain, lab, isAppPage, broadcast);
  const host = createHostServices({
    showOpenDialog: (o) => {
      const parent = BrowserWindow.getFocusedWindow();
      const opts = o as Electron.OpenDialogOptions;
      return parent ? dialog.showOpenDialog(parent, opts) : dialog.showOpenDialog(opts);
    },
    showSaveDialog: (o) => {
      const parent = BrowserWindow.getFocusedWindow();
      return parent ? dialog.showSaveDialog(parent, o) : dialog.showSaveDialog(o);
    },
    writeFile: (path, data) => writeFile(path, data),
    documentsDir: app.getPath('documents'),
  });
  wireHostIpc(ipcMain, host, isAppPage);

  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

// the chat window's warm ranks are child processes: stop them with the app
app.on('before-quit', () => void closeAllChats());

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
