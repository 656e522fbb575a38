#!/usr/bin/env node
/*
 * `npm start` needs Electron's binary. npm 11 blocks dependency install
 * scripts by default, so electron's own postinstall (which downloads the
 * binary) may never have run: run it now, once, if the binary is missing.
 */
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const dir = join(__dirname, '..', 'node_modules', 'electron');
const pathFile = join(dir, 'path.txt');
const installed = existsSync(pathFile) && existsSync(join(dir, 'dist', readFileSync(pathFile, 'utf8').trim()));
if (!installed) {
  console.error('paralab: downloading the Electron binary (first start only)…');
  const r = spawnSync(process.execPath, [join(dir, 'install.js')], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('paralab: could not download Electron. Without network, use `npm run serve` (the same UI in a browser) or `npm run lab -- …` (the CLI).');
    process.exit(1);
  }
}
