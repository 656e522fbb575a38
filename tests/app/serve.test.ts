/** `lab serve` glue (main/server/index.ts): argument parsing and the printed URL that opens the app. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, serveMain } from '../../main/server';

describe('parseServeArgs', () => {
  it('defaults to loopback, a free port and out/renderer', () => {
    expect(parseServeArgs([])).toEqual({ host: '127.0.0.1', port: 0, staticDir: 'out/renderer', json: false });
    expect(parseServeArgs(['--port', '8123', '--host', 'localhost', '--json'])).toMatchObject({ host: 'localhost', port: 8123, json: true });
  });

  it('says what to change when an option is wrong', () => {
    expect(() => parseServeArgs(['--port', 'x'])).toThrow('--port must be an integer');
    expect(() => parseServeArgs(['--port'])).toThrow('--port needs a value');
    expect(() => parseServeArgs(['--open'])).toThrow('unknown option --open');
  });
});

describe('serveMain', () => {
  it('refuses to start without a built renderer', async () => {
    await expect(serveMain(['--static', join(tmpdir(), 'paralab-nothing-here')], () => {})).rejects.toThrow('npm run build');
  });

  it('prints one JSON line whose pageUrl opens the app', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paralab-serve-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>ParaLab</title>');
    const lines: string[] = [];
    const host = await serveMain(['--static', dir, '--json'], (l) => lines.push(l));
    try {
      const printed = JSON.parse(lines[0]) as { url: string; token: string; pageUrl: string };
      expect(printed.pageUrl).toBe(`${printed.url}?token=${printed.token}`);
      expect((await fetch(printed.pageUrl)).status).toBe(200);
      expect((await fetch(printed.url)).status).toBe(401);
    } finally {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
