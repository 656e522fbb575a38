/**
 * Files that survive a crash: writes flushed to the disk (fsync of the file,
 * then of its folder after a rename), and the sweep of what a crashed writer
 * left behind in a runs folder (its hidden temp folders and files).
 */
import path from 'node:path';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';

/** Write a file and flush it to the disk before returning. */
export function writeDurable(file: string, text: string): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flush a folder's entries (the names of what was written or renamed into it); not possible on Windows. */
export function syncDir(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Temporary folders (`.ID.PID.tmp`) and files (`run.json.PID.tmp`) older than this are a crash's leftovers. */
export const STALE_TMP_MS = 60 * 60_000;

/**
 * Remove what a crashed writer left in a runs directory: hidden `.…tmp`
 * folders of writers that are gone (pid not running) or older than
 * STALE_TMP_MS, and `run.json.PID.tmp` files inside run folders. Returns the
 * paths removed. Never touches a complete run folder.
 */
export function sweepTempFolders(runsDir: string, now = Date.now()): string[] {
  if (!existsSync(runsDir)) return [];
  const removed: string[] = [];
  const stale = (p: string, pid: number) => !pidAlive(pid) || now - statSync(p).mtimeMs > STALE_TMP_MS;
  for (const name of readdirSync(runsDir)) {
    const p = path.join(runsDir, name);
    const tmp = /^\..+\.(\d+)\.tmp$/.exec(name);
    try {
      if (tmp && stale(p, Number(tmp[1]))) {
        rmSync(p, { recursive: true, force: true });
        removed.push(p);
      } else if (!name.startsWith('.') && statSync(p).isDirectory()) {
        for (const f of readdirSync(p)) {
          const m = /^run\.json\.(\d+)\.tmp$/.exec(f);
          if (m && stale(path.join(p, f), Number(m[1]))) {
            rmSync(path.join(p, f), { force: true });
            removed.push(path.join(p, f));
          }
        }
      }
    } catch {
      // a folder another process is removing right now: nothing to sweep
    }
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
