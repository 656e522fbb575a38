/**
 * Electron entry: app lifecycle, one secure window, the CSP, navigation and
 * pop-up lockdown, and the Lab API wired to IPC (main/ipc.ts). Everything the
 * lab does lives in main/lab and main/engine, which never import electron.
 */
import { app, BrowserWindow, Menu, ipcMain, session, type MenuItemConstructorOptions } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CSP_HEADER } from './csp';
import { IPC_EVENT_CHANNEL, trustedSenderCheck, wireLabIpc } from './ipc';
import { createLab } from './lab/lab';

const rendererFile = join(__dirname, '../renderer/index.html');
const devServerUrl = app.isPackaged ? undefined : process.env['ELECTRON_RENDERER_URL'];
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

function minimalMenu(): Menu {
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { role: 'fileMenu' },
    { role: 'editMenu' },
    { role: 'viewMenu' },
    { role: 'windowMenu' },
  ];
  return Menu.buildFromTemplate(template);
}

void app.whenReady().then(() => {
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    const headers = details.responseHeaders ?? {};
    if (isAppPage({ url: details.url })) headers['Content-Security-Policy'] = [CSP_HEADER];
    callback({ responseHeaders: headers });
  });
  app.on('web-contents-created', (_e, contents) => contents.on('will-attach-webview', (ev) => ev.preventDefault()));
  Menu.setApplicationMenu(minimalMenu());

  const lab = createLab({ version: app.getVersion() });
  const broadcast = (e: unknown) => BrowserWindow.getAllWindows().forEach((w) => w.webContents.send(IPC_EVENT_CHANNEL, e));
  wireLabIpc(ipcMain, lab, isAppPage, broadcast);

  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
