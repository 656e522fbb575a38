/** Ambient types of the renderer: .vue modules, CSS imports, and the preload's window.paralab. */
/// <reference types="vite/client" />

declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

interface Window {
  /** present only inside the Electron app (preload/index.ts); the web host uses a WebSocket instead */
  paralab?: import('../main/lab/contract').LabApi;
}
