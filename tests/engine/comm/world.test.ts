/**
 * The data plane's plain parts, without rank processes: the ledger (sums,
 * reset, structured-clone-safe, host-side merge), the closed forms, and the
 * host side of prepareWorld / destroyWorld (validation messages, files made
 * and removed, safe to destroy twice, 'auto' falling back to Unix sockets
 * when the addon is off).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { closedForm, evenCounts } from '../../../main/engine/comm/communicator';
import { Ledger, mergeSummaries } from '../../../main/engine/comm/ledger';
import { shmAddon } from '../../../main/engine/comm/shm-native';
import { destroyWorld, prepareWorld } from '../../../main/engine/comm/world';

describe('ledger', () => {
  it('sums per op and per group, resets, and survives structured cloning', () => {
    const l = new Ledger();
    l.record('all_reduce', 'tp0', 100, 100, 2, 0.5);
    l.record('all_reduce', 'tp0', 50, 50, 1, 3);
    l.record('send', 'pp0', 8, 0, 0.1, 0);
    expect(l.summary()).toEqual({ all_reduce: { count: 2, bytesSent: 150, bytesRecv: 150, ms: 3, waitMs: 1.5 }, send: { count: 1, bytesSent: 8, bytesRecv: 0, ms: 0.1, waitMs: 0 } });
    expect(Object.keys(l.byGroup())).toEqual(['tp0', 'pp0']);
    expect(structuredClone(l.summary())).toEqual(l.summary());
    expect(mergeSummaries([l.summary(), null, l.summary()]).all_reduce!.bytesSent).toBe(300);
    l.reset();
    expect(l.summary()).toEqual({});
  });

  it('closed forms: all-reduce moves 2(n−1)/n·L per rank when n divides L; the pieces add up otherwise', () => {
    for (const n of [2, 3, 4, 8]) {
      expect(closedForm.allReduce(n, 1, 64 * n).sent).toBe(((2 * (n - 1)) / n) * 4 * 64 * n);
      const L = 1001;
      const total = Array.from({ length: n }, (_, me) => closedForm.allReduce(n, me, L).sent).reduce((a, b) => a + b, 0);
      expect(total).toBe(4 * 2 * (n - 1) * L);
    }
    expect(evenCounts(7, 4)).toEqual([2, 2, 2, 1]);
  });
});

describe('prepareWorld / destroyWorld (host side)', () => {
  it('refuses bad groups with a message that says what to change', async () => {
    await expect(prepareWorld({ world: 2, transport: 'tcp', groups: [{ name: 'tp', ranks: [0, 2] }] })).rejects.toThrow(/group 'tp' has ranks \[0,2\] outside 0…1/);
    await expect(prepareWorld({ world: 2, transport: 'tcp', groups: [{ name: 'tp', ranks: [0, 1] }, { name: 'tp', ranks: [1] }] })).rejects.toThrow(/'tp' is used twice/);
    await expect(prepareWorld({ world: 2, transport: 'tcp', groups: [{ name: 'tp', ranks: [1, 1] }] })).rejects.toThrow(/lists a rank twice/);
  });

  it.skipIf(!shmAddon())('shm: creates one file per group under /dev/shm and removes them, twice safely', async () => {
    const setup = await prepareWorld({ world: 4, transport: 'shm', groups: [{ name: 'tp0', ranks: [0, 1] }, { name: 'tp1', ranks: [2, 3] }, { name: 'pp', ranks: [0, 2] }] });
    expect(setup.transport).toBe('shm');
    expect(setup.shm!.files).toHaveLength(3);
    for (const f of setup.shm!.files) expect(f.startsWith('/dev/shm/paralab-') && existsSync(f)).toBe(true);
    expect(JSON.parse(JSON.stringify(setup))).toEqual(setup);
    destroyWorld(setup);
    destroyWorld(setup);
    for (const f of setup.shm!.files) expect(existsSync(f)).toBe(false);
  });

  it("'auto' is Unix sockets when the addon is off (PARALAB_SHM=0), and the socket folder goes with the world", () => {
    const script = `const w = require('./main/engine/comm/world');
      w.prepareWorld({ world: 2, transport: 'auto', groups: [{ name: 'all', ranks: [0, 1] }] }).then((s) => {
        const fs = require('node:fs'); const had = fs.existsSync(s.sockets.dir); w.destroyWorld(s);
        console.log(JSON.stringify({ transport: s.transport, had, gone: !fs.existsSync(s.sockets.dir) }));
      });`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { env: { ...process.env, PARALAB_SHM: '0' }, encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ transport: process.platform === 'win32' ? 'tcp' : 'unix', had: true, gone: true });
  });
});
