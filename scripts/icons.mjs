#!/usr/bin/env node
// Renders resources/icon.svg into the app icon files Electron and the
// installers use, in resources/icons/:
//   16…1024 px PNGs (Linux: electron-builder picks sizes from the folder),
//   icon.png (512 px: BrowserWindow icon), icon.ico (Windows: 16–256 px
//   PNG entries), icon.icns (macOS: ic04–ic10 PNG entries).
// Rasterizes with Debian's Chromium through playwright-core (no other tool).
// The outputs are committed; run this only after changing the SVG:
//   node scripts/icons.mjs
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'resources', 'icons');
const svg = readFileSync(path.join(root, 'resources', 'icon.svg'), 'utf8');
const SIZES = [16, 32, 48, 64, 128, 256, 512, 1024];
const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(exe)) {
  console.error(`icons: no Chromium at ${exe}; install Debian's (apt-get install chromium) or set CHROMIUM=/path/to/chrome`);
  process.exit(1);
}

const profile = mkdtempSync(path.join(os.tmpdir(), 'paralab-icons-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: exe, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const png = {};
try {
  const page = await context.newPage();
  for (const s of SIZES) {
    await page.setViewportSize({ width: s, height: s });
    await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('<svg ', `<svg width="${s}" height="${s}" `)}</body></html>`);
    png[s] = await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: s, height: s } });
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

mkdirSync(out, { recursive: true });
for (const s of SIZES) writeFileSync(path.join(out, `${s}x${s}.png`), png[s]);
writeFileSync(path.join(out, 'icon.png'), png[512]);

// ICO: header (reserved 0, type 1, count), one 16-byte entry per image, then the PNGs.
const icoSizes = [16, 32, 48, 64, 128, 256];
const head = Buffer.alloc(6 + 16 * icoSizes.length);
head.writeUInt16LE(0, 0);
head.writeUInt16LE(1, 2);
head.writeUInt16LE(icoSizes.length, 4);
let offset = head.length;
icoSizes.forEach((s, i) => {
  const e = 6 + 16 * i;
  head.writeUInt8(s === 256 ? 0 : s, e); // 0 means 256
  head.writeUInt8(s === 256 ? 0 : s, e + 1);
  head.writeUInt16LE(1, e + 4); // colour planes
  head.writeUInt16LE(32, e + 6); // bits per pixel
  head.writeUInt32LE(png[s].length, e + 8);
  head.writeUInt32LE(offset, e + 12);
  offset += png[s].length;
});
writeFileSync(path.join(out, 'icon.ico'), Buffer.concat([head, ...icoSizes.map((s) => png[s])]));

// ICNS: 'icns' + total length, then (type, length incl. 8-byte header, PNG) per entry.
const icnsTypes = [['icp4', 16], ['icp5', 32], ['icp6', 64], ['ic07', 128], ['ic08', 256], ['ic09', 512], ['ic10', 1024]];
const chunks = icnsTypes.map(([type, s]) => {
  const h = Buffer.alloc(8);
  h.write(type, 0, 'ascii');
  h.writeUInt32BE(8 + png[s].length, 4);
  return Buffer.concat([h, png[s]]);
});
const body = Buffer.concat(chunks);
const ih = Buffer.alloc(8);
ih.write('icns', 0, 'ascii');
ih.writeUInt32BE(8 + body.length, 4);
writeFileSync(path.join(out, 'icon.icns'), Buffer.concat([ih, body]));
console.log(`icons: wrote ${SIZES.length} PNGs, icon.png, icon.ico and icon.icns to ${path.relative(root, out)}`);
