/**
 * A rank's lifeline: a thread of its own that beats to the host and ends the
 * rank when the host is gone.
 *
 * The rank's JS thread is often inside a synchronous session.run (or a
 * blocking wait of a collective) for seconds, when no IPC heartbeat and no
 * 'disconnect' handler can run. This worker thread can: every PERIOD_MS it
 * writes one byte to the pipe the host gave it (fd PARALAB_LIFELINE_FD,
 * host/cluster.ts reads it as the heartbeat) and checks its parent. A write
 * that fails (EPIPE: the host's end is closed) or a changed parent pid (the
 * host died and the rank was re-parented) kills the whole process at once
 * with SIGKILL — `process.exit` in a worker would end only the worker. So a
 * rank never outlives its host by more than a period, even mid-step.
 *
 * A stopped rank (SIGSTOP, a frozen VM) stops this thread too: the host sees
 * the silence and fails the run naming the rank.
 */
import { Worker } from 'node:worker_threads';

export const PERIOD_MS = 100;

// Plain JS (a worker from a string needs no file next to the bundle).
const SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, ppid, periodMs } = workerData;
const beat = Buffer.from([1]);
const die = () => process.kill(process.pid, 'SIGKILL');
setInterval(() => {
  if (process.ppid !== ppid) return die();
  if (fd === null) return;
  try {
    fs.writeSync(fd, beat);
  } catch (e) {
    if (e && e.code !== 'EAGAIN') die();
  }
}, periodMs);
`;

/** Start the lifeline thread (forked ranks: fd from the host; no fd: only the parent check). */
export function startLifeline(fd: number | null, periodMs = PERIOD_MS): Worker {
  const w = new Worker(SOURCE, { eval: true, workerData: { fd, ppid: process.ppid, periodMs } });
  // never keeps the rank alive on its own, and its failure must not end the rank
  w.unref();
  w.on('error', () => undefined);
  return w;
}

/** The lifeline fd the host handed this rank, if it is a forked child. */
export function lifelineFd(env: NodeJS.ProcessEnv = process.env): number | null {
  const v = env['PARALAB_LIFELINE_FD'];
  const fd = v === undefined ? NaN : Number(v);
  return Number.isInteger(fd) && fd > 2 ? fd : null;
}
