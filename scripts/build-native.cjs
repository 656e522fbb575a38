#!/usr/bin/env node
/*
 * Builds the shared-memory addon (native/shm.c → build/Release/paralab_shm.node)
 * with npm's own bundled node-gyp, against the headers of the running Node
 * (npm's `nodedir`, else the headers installed beside this node binary), so
 * nothing is downloaded. Never fails the install: without the addon (no C
 * compiler, not Linux) ranks talk over Unix sockets instead, and
 * `lab commbench` shows the difference.
 */
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function warn(why) {
  console.warn(`paralab: shared-memory addon not built (${why}); ranks will talk over Unix sockets instead.`);
  process.exit(0);
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const npmDirs = [
    process.env.npm_execpath && path.resolve(path.dirname(process.env.npm_execpath), '..'),
    path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm'),
    path.resolve(path.dirname(process.execPath), 'node_modules/npm'),
  ].filter(Boolean);
  for (const dir of npmDirs) {
    try {
      return require.resolve('node-gyp/bin/node-gyp.js', { paths: [dir] });
    } catch {
      /* try the next place npm may live */
    }
  }
  return null;
}

/** Headers of this very node: npm's nodedir, or <prefix>/include/node beside the binary. */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : null;
}

if (process.platform !== 'linux') warn(`the shared-memory transport is Linux-only for now, this is ${process.platform}`);
const gyp = findNodeGyp();
if (!gyp) warn("npm's node-gyp was not found");
const dir = nodeDir();
const argv = [gyp, 'rebuild', ...(dir ? [`--nodedir=${dir}`] : [])];
const r = spawnSync(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 180_000 });
if (r.status !== 0) {
  const lines = `${r.stderr || ''}\n${r.error ? r.error.message : ''}`.split('\n').map((l) => l.trim());
  const cause = lines.filter((l) => l && !l.startsWith('gyp ')).slice(-2);
  const tail = (cause.length ? cause : lines.filter(Boolean).slice(-2)).join(' | ');
  warn(`node-gyp failed: ${tail || `exit ${r.status}`}`);
}
console.log('paralab: built build/Release/paralab_shm.node (shared-memory transport available)');
