import { defineConfig } from 'vitest/config';
import vue from '@vitejs/plugin-vue';

// One runner for everything: engine and lab tests run in Node (real rank
// processes, real onnxruntime sessions); renderer component tests opt into
// happy-dom with a `// @vitest-environment happy-dom` header; the browser
// end-to-end tests drive Debian's Chromium through the web host.
export default defineConfig({
  plugins: [vue()],
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
