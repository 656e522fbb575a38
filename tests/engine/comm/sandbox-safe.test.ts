/**
 * The shared-memory transport in the mode the desktop app needs: Electron's
 * V8 sandbox forbids external ArrayBuffers, so the addon must never create
 * one. The binary itself is checked (the N-API calls it imports), and the
 * same addon then runs a tp=2 plan and an ep plan whose tokens equal single.
 * (The collectives' own equivalence with a naive reference, windows and
 * failures included: collectives.test.ts, on this same path.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shmAddon } from '../../../main/engine/comm/shm-native';
import { autoTransport } from '../../../main/engine/comm/world';
import { Engine } from '../../../main/engine/host/engine';
import { verify } from '../../../main/engine/host/verify';

const ADDON = path.resolve(__dirname, '../../../build/Release/paralab_shm.node');

describe.skipIf(!shmAddon())('shared memory without external buffers (what Electron allows)', () => {
  it('the addon binary imports no N-API call that makes an external ArrayBuffer or Buffer', () => {
    const bin = readFileSync(ADDON).toString('latin1');
    // dynamic symbols are plain strings in the ELF: what the addon calls into Node with
    expect(bin).toContain('napi_create_external\0'); // the opaque handle
    expect(bin).toContain('napi_get_typedarray_info'); // the caller's own arrays
    expect(bin).not.toContain('napi_create_external_arraybuffer');
    expect(bin).not.toContain('napi_create_external_buffer');
  });

  it("'auto' picks shared memory here and says so", () => {
    expect(autoTransport().transport).toBe('shm');
    expect(autoTransport().reason).toMatch(/no external buffers/);
  });

  it('tp=2 over shared memory reproduces single (tokens and logits), and the ranks say which transport they used', async () => {
    const r = await verify({ model: 'synth-llama-tiny', parallel: 'tp=2', transport: 'shm', promptIds: [1, 2, 3, 200, 17, 45], maxNewTokens: 6, threadsPerRank: 1 });
    expect(r.passed).toBe(true);
    const e = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', transport: 'shm', threadsPerRank: 1 });
    try {
      expect(e.transport).toBe('shm');
    } finally {
      await e.close();
    }
  });
});
