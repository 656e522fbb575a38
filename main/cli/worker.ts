/**
 * `lab worker --join HOST:PORT`: serve as one rank of a cluster whose host
 * runs elsewhere (another terminal or machine). The host side is any
 * command given `--listen HOST:PORT --workers N`: its last N ranks wait for
 * workers instead of being forked.
 */
import { parse, intOpt, UsageError } from './args';
import type { Values } from './args';
import { parseHostPort } from '../engine/rank/channel';

export const workerOptions = {
  listen: { type: 'string' },
  workers: { type: 'string' },
} as const;

export function remoteFrom(v: Values<typeof workerOptions>) {
  if (v.workers === undefined && v.listen === undefined) return undefined;
  if (!v.listen || !v.workers) throw new UsageError('--listen HOST:PORT and --workers N go together (N ranks join with `lab worker --join HOST:PORT`)');
  parseHostPort(v.listen);
  return {
    listen: v.listen,
    count: intOpt('workers', v.workers, 1, 1),
    onListening: (a: string) => process.stderr.write(`lab: waiting for workers: run \`npm run lab -- worker --join ${a}\`\n`),
  };
}

export async function workerCommand(argv: string[]): Promise<void> {
  const { values } = parse('worker', argv, { join: { type: 'string' } });
  if (!values.join) throw new UsageError('worker needs --join HOST:PORT (the address the host prints)');
  const { host, port } = parseHostPort(values.join);
  const { joinHost } = await import('../engine/rank/main');
  await joinHost(host, port);
  process.stderr.write(`lab: joined ${host}:${port}; serving until the host ends the run\n`);
  // Stay alive: the rank's socket keeps the event loop busy; it exits when the host closes it.
  await new Promise<never>(() => undefined);
}
