/**
 * electron-vite build for the `main/ preload/ renderer/` layout.
 *
 * main     main/index.ts → out/main/index.js (Electron entry) and
 *          main/engine/rank/main.ts → out/main/rank.js (one rank process);
 *          package.json dependencies (onnxruntime-node, ws, …) stay external.
 * preload  preload/index.ts → out/preload/index.js, CommonJS (sandboxed preloads need it).
 * renderer renderer/index.html → out/renderer/ (Vue 3 + ECharts), also served by the web host.
 */
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const root = __dirname;

export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      externalizeDeps: true,
      rolldownOptions: {
        input: {
          index: resolve(root, 'main/index.ts'),
          rank: resolve(root, 'main/engine/rank/main.ts'),
        },
        output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
      },
    },
  },
  preload: {
    build: {
      outDir: resolve(root, 'out/preload'),
      rolldownOptions: {
        input: { index: resolve(root, 'preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].js' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    plugins: [vue()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      // minified: the web host serves it to browsers too (ECharts is most of the bundle)
      minify: true,
      chunkSizeWarningLimit: 1500,
      rolldownOptions: { input: { index: resolve(root, 'renderer/index.html') } },
    },
  },
});
