/**
 * The web host's public face: startWebHost for code and tests, serveMain for
 * `lab serve [--host H] [--port N] [--static DIR] [--json]` (the CLI calls it).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLab } from '../lab/lab';
import { closeAllChats } from '../lab/chat';
import { startWebHost, type WebHost } from './webHost';

export { startWebHost, type WebHost, type WebHostOptions } from './webHost';

export interface ServeArgs {
  host: string;
  port: number;
  staticDir: string;
  json: boolean;
}

export function parseServeArgs(argv: string[]): ServeArgs {
  const a: ServeArgs = { host: '127.0.0.1', port: 0, staticDir: 'out/renderer', json: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--host') a.host = value();
    else if (flag === '--port') a.port = Number(value());
    else if (flag === '--static') a.staticDir = value();
    else if (flag === '--json') a.json = true;
    else throw new Error(`unknown option ${flag}; serve takes --host H --port N --static DIR --json`);
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be an integer in 0..65535 (0 picks a free port)`);
  return a;
}

/** Starts the web host with the real lab, prints where to open it, and closes it on SIGINT / SIGTERM. */
export async function serveMain(argv: string[], out: (line: string) => void = console.log): Promise<WebHost> {
  const args = parseServeArgs(argv);
  const staticDir = resolve(args.staticDir);
  if (!existsSync(join(staticDir, 'index.html'))) {
    throw new Error(`${join(staticDir, 'index.html')} is missing; run \`npm run build\` first (or pass --static DIR)`);
  }
  if (args.host !== '127.0.0.1' && args.host !== 'localhost' && args.host !== '::1') {
    process.stderr.write(`warning: serving on ${args.host}; anyone who can reach it and has the token can run the lab\n`);
  }
  const log = (m: string) => process.stderr.write(`lab serve: ${m}\n`);
  const host = await startWebHost({ host: args.host, port: args.port, staticDir, lab: createLab(), log });
  // A long-running host reports a stray rejection (a bug) instead of ending every session with it.
  const stray = (e: unknown) => log(`internal error, kept running: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.on('unhandledRejection', stray);
  out(args.json ? JSON.stringify({ url: host.url, token: host.token, pageUrl: host.pageUrl }) : `ParaLab is served at ${host.pageUrl}\n(Ctrl-C stops it)`);
  const stop = () => void Promise.all([host.close(), closeAllChats()]).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const close = async () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('unhandledRejection', stray);
    await Promise.all([host.close(), closeAllChats()]);
  };
  return { ...host, close };
}
