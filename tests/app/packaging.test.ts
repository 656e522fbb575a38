/**
 * Packaging, as far as it can be checked without downloading Electron (which
 * `npm run dist` does, so it cannot run on these machines): the
 * electron-builder config is valid against electron-builder's own JSON
 * schema, every file it names exists, the platform's onnxruntime binaries
 * survive the pruning pattern, and the icons are well-formed PNG / ICO /
 * ICNS files of the sizes the installers take.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p));
const config = JSON.parse(read('electron-builder.json').toString('utf8')) as {
  files: string[];
  asarUnpack: string[];
  extraResources: { from: string; to: string }[];
  directories: { buildResources: string };
  linux: { icon: string; target: string[] };
  mac: { icon: string; target: string[] };
  win: { icon: string; target: string[] };
};

/** Width and height from a PNG's IHDR chunk; throws on anything that is not a PNG. */
function pngSize(b: Buffer): [number, number] {
  expect(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature').toBe(true);
  expect(b.toString('ascii', 12, 16)).toBe('IHDR');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

describe('packaging (electron-builder)', () => {
  it('has a config that electron-builder’s schema accepts, and `npm run dist` uses it', () => {
    const schema = JSON.parse(read('node_modules/app-builder-lib/scheme.json').toString('utf8'));
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...config, linux: { ...config.linux, tragets: ['AppImage'] } }), 'a misspelt key is refused').toBe(false);
    const pkg = JSON.parse(read('package.json').toString('utf8')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.scripts.dist).toMatch(/electron-vite build && electron-builder --config electron-builder\.json/);
    expect(pkg.devDependencies['electron-builder']).toBeDefined();
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.mac.target).toEqual(['dmg']);
    expect(config.win.target).toEqual(['nsis']);
  });

  it('names files that exist, and unpacks the native binaries from the asar', () => {
    for (const p of [config.directories.buildResources, config.linux.icon, config.mac.icon, config.win.icon, ...config.extraResources.map((r) => r.from)]) expect(existsSync(join(ROOT, p)), p).toBe(true);
    expect(config.files).toContain('build/Release/paralab_shm.node');
    expect(config.asarUnpack).toEqual(expect.arrayContaining(['node_modules/onnxruntime-node/bin/**', 'build/Release/*.node']));
    // other platforms' onnxruntime binaries are pruned; this platform's are kept
    expect(config.files).toContain('!node_modules/onnxruntime-node/bin/napi-v6/**');
    const kept = 'node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/**';
    expect(config.files).toContain(kept);
    const here = join(ROOT, kept.replace('${platform}', process.platform).replace('${arch}', process.arch).replace('/**', ''));
    expect(readdirSync(here)).toContain('onnxruntime_binding.node');
  });

  it('has the icons in every size the installers take (PNG, ICO, ICNS)', () => {
    for (const s of [16, 32, 48, 64, 128, 256, 512, 1024]) expect(pngSize(read(`resources/icons/${s}x${s}.png`))).toEqual([s, s]);
    expect(pngSize(read('resources/icons/icon.png'))).toEqual([512, 512]);
    const ico = read('resources/icons/icon.ico');
    expect([ico.readUInt16LE(0), ico.readUInt16LE(2)]).toEqual([0, 1]);
    const n = ico.readUInt16LE(4);
    expect(n).toBe(6);
    for (let i = 0; i < n; i++) {
      const e = 6 + 16 * i;
      const side = ico.readUInt8(e) || 256;
      const png = ico.subarray(ico.readUInt32LE(e + 12), ico.readUInt32LE(e + 12) + ico.readUInt32LE(e + 8));
      expect(pngSize(png)).toEqual([side, side]);
    }
    const icns = read('resources/icons/icon.icns');
    expect(icns.toString('ascii', 0, 4)).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(icns.length);
    const types: string[] = [];
    for (let o = 8; o < icns.length; o += icns.readUInt32BE(o + 4)) types.push(icns.toString('ascii', o, o + 4));
    expect(types).toEqual(['icp4', 'icp5', 'icp6', 'ic07', 'ic08', 'ic09', 'ic10']);
    expect(read('resources/icon.svg').toString('utf8')).toMatch(/^<svg /);
  });
});
