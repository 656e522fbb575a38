/** Shared helpers for the model-layer tests: temp folders that are removed after the file's tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { ModelError, type ModelErrorCode } from '../../../main/engine/model/errors';

const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh folder under the OS temp dir, removed when the test file ends. */
export function tmpDir(prefix = 'paralab-model-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Runs `fn` and returns the ModelError it throws (fails the test if it throws anything else or nothing). */
export async function modelError(fn: () => unknown, code: ModelErrorCode): Promise<ModelError> {
  let err: unknown = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a ModelError').toBeInstanceOf(ModelError);
  const me = err as ModelError;
  expect(me.code, me.message).toBe(code);
  // one line, and it says what to do
  expect(me.message).not.toContain('\n');
  return me;
}
