/** Ambient types of the renderer: .vue modules, CSS imports, and the preload's window.paralab / window.paralabHost. */
/// <reference types="vite/client" />

declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

/** Commands of the desktop app's native menu, delivered to the renderer. */
type ParalabMenuCommand = 'open-folder' | 'export-report' | `view:${string}`;

/** The desktop app's own services (dialogs, menu), outside the Lab API; preload/index.ts exposes them. */
interface ParalabHostApi {
  /** native open-folder dialog; the chosen folder or null */
  openFolder(): Promise<string | null>;
  /** native save dialog for a report file; the saved path or null when cancelled */
  saveFile(file: import('../main/lab/contract').ReportFile): Promise<string | null>;
  onMenu(listener: (command: ParalabMenuCommand) => void): () => void;
}

interface Window {
  /** present only inside the Electron app (preload/index.ts); the web host uses a WebSocket instead */
  paralab?: import('../main/lab/contract').LabApi;
  paralabHost?: ParalabHostApi;
}
