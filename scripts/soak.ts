/**
 * The soak test (issue 12): the real web host (`lab serve`, a child process)
 * under a mixed loop of chats, generates, benches, cancels and rank kills,
 * loopback only, for a bounded time.
 *
 *   npm run soak -- [--minutes 10] [--json]
 *
 * Checked at the end (exit 1 when any fails): every request was answered;
 * every bench job ended done, failed or cancelled; the host's RSS and open
 * file descriptors stayed flat (after a warm-up minute); no rank process
 * outlived the host; nothing is left in /dev/shm; every run folder is whole.
 * The figures go into docs/PERFORMANCE.md.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { BenchJob, WireMessage } from '../main/lab/contract';

const args = process.argv.slice(2);
const minutes = Number(args[args.indexOf('--minutes') + 1] ?? 10) || 10;
const json = args.includes('--json');
const ROOT = path.resolve(__dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'paralab-soak-'));
const runsDir = path.join(tmp, 'runs');
mkdirSync(path.join(tmp, 'renderer'));
writeFileSync(path.join(tmp, 'renderer', 'index.html'), '<!doctype html><title>soak</title>');

const log = (s: string) => {
  if (!json) process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
};

function children(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map(Number).filter((n) => n > 0);
  } catch {
    return [];
  }
}

function procStat(pid: number): { rss: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  return { rss, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Rank processes anywhere on the machine that belong to this soak's host (by their environment's runs dir). */
function strayRanks(): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'utf8');
      if (env.includes(`PARALAB_RUNS=${runsDir}`) && env.includes('PARALAB_RANK=')) out.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

const shmLeft = () => (existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith('paralab-')) : []);

async function main(): Promise<number> {
  const shmBefore = new Set(shmLeft());
  const server = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'main/cli/index.ts'), 'serve', '--static', path.join(tmp, 'renderer'), '--json'], {
    cwd: ROOT,
    env: { ...process.env, PARALAB_RUNS: runsDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let serverErr = '';
  server.stderr.on('data', (d) => (serverErr += d));
  const info = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    server.stdout.once('data', (d) => resolve(JSON.parse(String(d)) as { url: string; token: string }));
    server.once('exit', (c) => reject(new Error(`lab serve exited (${c}): ${serverErr}`)));
  });
  const port = new URL(info.url).port;
  const ws = await new Promise<WebSocket>((resolve, reject) => {
    const s = new WebSocket(`ws://127.0.0.1:${port}/api?token=${info.token}`, { origin: `http://127.0.0.1:${port}` });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
  const waiting = new Map<number, { resolve: (m: WireMessage) => void; method: string; t0: number }>();
  const jobs = new Map<string, BenchJob>();
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as WireMessage;
    if ('event' in m) {
      if (m.event.kind === 'job') jobs.set(m.event.job.jobId, m.event.job);
      return;
    }
    waiting.get(m.id)?.resolve(m);
    waiting.delete(m.id);
  });
  let nextId = 1;
  const tally = { sent: 0, ok: 0, failed: 0, unanswered: 0, kills: 0, cancels: 0, chats: 0, generates: 0, benches: 0 };
  const errors = new Map<string, number>();
  const call = (method: string, params: unknown[], timeoutMs = 180_000) => {
    const id = nextId++;
    tally.sent++;
    return new Promise<WireMessage | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        tally.unanswered++;
        log(`UNANSWERED ${method} after ${timeoutMs / 1000} s`);
        resolve(null);
      }, timeoutMs);
      waiting.set(id, {
        method,
        t0: Date.now(),
        resolve: (m) => {
          clearTimeout(timer);
          if ('ok' in m && m.ok) tally.ok++;
          else if ('ok' in m) {
            tally.failed++;
            const key = `${m.error.code}: ${m.error.message.replace(/pid \d+/g, 'pid N').replace(/\d+(\.\d+)? s\b/g, 'N s').slice(0, 90)}`;
            errors.set(key, (errors.get(key) ?? 0) + 1);
          }
          resolve(m);
        },
      });
      ws.send(JSON.stringify({ v: 1, id, method, params }));
    });
  };

  const specs = ['single', 'tp=2', 'pp=2', 'dp=2'];
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
  const end = Date.now() + minutes * 60_000;
  const samples: { t: number; rss: number; fds: number; ranks: number }[] = [];
  const t0 = Date.now();
  const sampler = setInterval(() => {
    try {
      samples.push({ t: (Date.now() - t0) / 1000, ...procStat(server.pid!), ranks: children(server.pid!).length });
    } catch {
      // the host is gone: reported at the end
    }
  }, 5000);

  // Rank kills: every 20–40 s, one rank of whatever runs now.
  const killer = (async () => {
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20_000 + Math.random() * 20_000));
      const ranks = children(server.pid!);
      if (ranks.length === 0) continue;
      const victim = pick(ranks);
      try {
        process.kill(victim, 'SIGKILL');
        tally.kills++;
        log(`killed rank pid ${victim}`);
      } catch {
        // it ended by itself
      }
    }
  })();

  // Chats (with cancels), generates and benches, one client loop each.
  const chatLoop = (async () => {
    let turn = 0;
    while (Date.now() < end) {
      const requestId = `chat-${turn++}`;
      const reply = call('chat', [{ requestId, model: 'synth-llama-tiny', parallel: pick(specs), messages: [{ role: 'user', content: `turn ${turn}` }], maxNewTokens: 16 + Math.floor(Math.random() * 48), threadsPerRank: 1 }]);
      tally.chats++;
      if (Math.random() < 0.25) {
        setTimeout(() => {
          tally.cancels++;
          void call('cancel', [requestId]);
        }, Math.random() * 300);
      }
      await reply;
    }
  })();
  const generateLoop = (async () => {
    while (Date.now() < end) {
      tally.generates++;
      // expert parallelism only with the MoE preset (a dense model is refused with model-mismatch)
      const [model, parallel] = pick([...[...specs, 'sp=2'].map((p) => ['synth-llama-tiny', p]), ['synth-moe-tiny', 'dp=2,ep=2'], ['synth-moe-tiny', 'tp=2']]);
      await call('generate', [{ model, parallel, promptIds: [1, 2, 3, 4, 5], maxNewTokens: 24, ignoreEos: true, threadsPerRank: 1 }]);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  const benchLoop = (async () => {
    while (Date.now() < end) {
      const r = await call('startBench', [{ model: 'synth-llama-tiny', specs: [pick(['tp=2', 'pp=2'])], workload: pick(['decode', 'prefill']), promptLen: 16, outputLen: 8, reps: 1, threadsPerRank: 1 }]);
      tally.benches++;
      const jobId = r && 'ok' in r && r.ok ? (r.result as BenchJob).jobId : null;
      if (jobId && Math.random() < 0.3) {
        await new Promise((res) => setTimeout(res, 1000 + Math.random() * 2000));
        tally.cancels++;
        await call('cancelBench', [jobId]);
      }
      // wait for the job to end before the next (jobs queue one at a time)
      const until = Date.now() + 180_000;
      while (jobId && jobs.get(jobId)?.state !== 'done' && jobs.get(jobId)?.state !== 'failed' && jobs.get(jobId)?.state !== 'cancelled' && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 500));
      }
      await new Promise((res) => setTimeout(res, 3000));
    }
  })();
  const progress = setInterval(() => {
    const s = samples[samples.length - 1];
    log(`${tally.sent} sent, ${tally.ok} ok, ${tally.failed} failed, ${tally.unanswered} unanswered, ${tally.kills} kills; host rss ${s ? (s.rss / 2 ** 20).toFixed(0) : '?'} MiB, ${s?.fds ?? '?'} fds, ${s?.ranks ?? '?'} ranks`);
  }, 30_000);

  await Promise.all([chatLoop, generateLoop, benchLoop, killer]);
  clearInterval(progress);
  clearInterval(sampler);
  // let the last jobs settle
  const jobsEnd = Date.now() + 120_000;
  while ([...jobs.values()].some((j) => j.state === 'running') && Date.now() < jobsEnd) await new Promise((r) => setTimeout(r, 500));
  const listed = await call('listJobs', []);
  const jobList = listed && 'ok' in listed && listed.ok ? (listed.result as BenchJob[]) : [];
  ws.close();
  const hostAlive = server.exitCode === null;
  server.kill('SIGTERM');
  await new Promise<void>((r) => (server.exitCode !== null ? r() : server.once('exit', () => r())));
  await new Promise((r) => setTimeout(r, 1500));

  const warm = samples.filter((s) => s.t >= 60);
  const first = warm[0] ?? samples[0];
  const last = samples[samples.length - 1];
  const stray = strayRanks();
  const shm = shmLeft().filter((f) => !shmBefore.has(f));
  const runFolders = existsSync(runsDir) ? readdirSync(runsDir) : [];
  const broken = runFolders.filter((f) => f.startsWith('.') || !existsSync(path.join(runsDir, f, 'run.json')) || !existsSync(path.join(runsDir, f, 'trace.json')));
  const jobStates = jobList.reduce<Record<string, number>>((a, j) => ((a[j.state] = (a[j.state] ?? 0) + 1), a), {});
  const report = {
    minutes,
    ...tally,
    job_states: jobStates,
    run_folders: runFolders.length,
    broken_run_folders: broken,
    host_alive_at_end: hostAlive,
    host_rss_mib: { after_warmup: first ? first.rss / 2 ** 20 : null, end: last ? last.rss / 2 ** 20 : null, max: Math.max(...samples.map((s) => s.rss)) / 2 ** 20 },
    host_fds: { after_warmup: first?.fds ?? null, end: last?.fds ?? null, max: Math.max(...samples.map((s) => s.fds)) },
    stray_ranks: stray,
    shm_left: shm,
    errors: Object.fromEntries([...errors].sort((a, b) => b[1] - a[1])),
    load_avg: os.loadavg(),
  };
  const problems = [
    tally.unanswered > 0 && `${tally.unanswered} requests unanswered`,
    !hostAlive && 'the host died',
    jobList.some((j) => j.state === 'running') && 'a bench job never ended',
    broken.length > 0 && `broken run folders: ${broken.join(', ')}`,
    stray.length > 0 && `rank processes outlived the host: ${stray.join(', ')}`,
    shm.length > 0 && `left in /dev/shm: ${shm.join(', ')}`,
    first && last && last.rss - first.rss > 64 * 2 ** 20 && `host RSS grew ${((last.rss - first.rss) / 2 ** 20).toFixed(0)} MiB after warm-up`,
    first && last && last.fds - first.fds > 8 && `host fds grew from ${first.fds} to ${last.fds}`,
  ].filter(Boolean) as string[];
  for (const p of stray) process.kill(p, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
  if (json) process.stdout.write(JSON.stringify({ ...report, problems }, null, 2) + '\n');
  else {
    log(JSON.stringify(report, null, 2));
    log(problems.length ? `FAILED: ${problems.join('; ')}` : 'soak passed');
  }
  return problems.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
