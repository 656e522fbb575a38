/**
 * Fault injection, for tests only: PARALAB_FAULT makes one rank fail at one
 * phase, so the host's supervision can be checked for every phase and
 * transport (tests/engine/faults.test.ts).
 *
 *   PARALAB_FAULT="rank=1,phase=decode,kind=crash[,after=N]"
 *
 * phase: load | prefill | decode | join (a message from the host: 'init',
 *        a step of S > 1 or S = 1 tokens, a serving prefill joining the
 *        running batch) | all-to-all | ring (a collective: the EP
 *        dispatch's allToAllV, the ring pass's send)
 * kind:  crash   the process dies of SIGSEGV
 *        hang    the process stops (SIGSTOP): no thread runs, not even the lifeline
 *        stall   the rank stays alive but never finishes (the reply, or the collective, never comes)
 *        spin    the JS thread never returns (a compute that does not end: no message handler runs)
 *        corrupt the reply is malformed (message phases only)
 * after: occurrences of the phase to let pass first (default 0)
 *
 * Unset (every normal run), nothing here runs but one env lookup at start.
 */
import type { Communicator } from '../comm/communicator';
import type { LinkName } from '../runtime/block';

export const FAULT_PHASES = ['load', 'prefill', 'decode', 'join', 'all-to-all', 'ring'] as const;
export const FAULT_KINDS = ['crash', 'hang', 'stall', 'spin', 'corrupt'] as const;
export type FaultPhase = (typeof FAULT_PHASES)[number];
export type FaultKind = (typeof FAULT_KINDS)[number];
type MessagePhase = Exclude<FaultPhase, 'all-to-all' | 'ring'>;

export interface Fault {
  rank: number;
  phase: FaultPhase;
  kind: FaultKind;
  after: number;
}

export function parseFault(s: string | undefined): Fault | null {
  if (!s) return null;
  const kv = new Map(s.split(',').map((p) => p.split('=').map((x) => x.trim()) as [string, string]));
  const rank = Number(kv.get('rank'));
  const after = Number(kv.get('after') ?? 0);
  const phase = kv.get('phase') as FaultPhase;
  const kind = kv.get('kind') as FaultKind;
  const bad = (why: string) => new Error(`PARALAB_FAULT='${s}': ${why} (e.g. rank=1,phase=decode,kind=crash,after=0)`);
  if (!Number.isInteger(rank) || rank < 0) throw bad('rank must be a non-negative integer');
  if (!FAULT_PHASES.includes(phase)) throw bad(`phase must be one of ${FAULT_PHASES.join(', ')}`);
  if (!FAULT_KINDS.includes(kind)) throw bad(`kind must be one of ${FAULT_KINDS.join(', ')}`);
  if (kind === 'corrupt' && (phase === 'all-to-all' || phase === 'ring')) throw bad('corrupt applies to the message phases (load, prefill, decode, join)');
  if (!Number.isInteger(after) || after < 0) throw bad('after must be a non-negative integer');
  return { rank, phase, kind, after };
}

const never = () => new Promise<never>(() => undefined);

export class Faults {
  private seen = 0;

  constructor(private readonly fault: Fault | null) {}

  static fromEnv(rank: number, env: NodeJS.ProcessEnv = process.env): Faults {
    const f = parseFault(env['PARALAB_FAULT']);
    return new Faults(f && f.rank === rank ? f : null);
  }

  /** Whether the fault fires now (it fires once, at the after+1-th occurrence of its phase). */
  private fires(phase: FaultPhase): boolean {
    if (this.fault?.phase !== phase) return false;
    return this.seen++ === this.fault.after;
  }

  /** At a host message of `phase`: dies, stops or never returns; 'corrupt' when the reply must be malformed. */
  async atMessage(phase: MessagePhase): Promise<'corrupt' | null> {
    if (!this.fires(phase)) return null;
    return this.strike();
  }

  private async strike(): Promise<'corrupt'> {
    switch (this.fault!.kind) {
      case 'crash':
        process.kill(process.pid, 'SIGSEGV');
        return never();
      case 'hang':
        process.kill(process.pid, 'SIGSTOP');
        return never();
      case 'stall':
        return never();
      case 'spin':
        for (;;) {
          // a busy JS thread, as inside a session.run that never ends
        }
      case 'corrupt':
        return 'corrupt';
    }
  }

  /** The communicator of `link`, with the fault in its collective when this rank's fault is there. */
  wrap(link: LinkName, comm: Communicator): Communicator {
    const f = this.fault;
    if (!f || (f.phase !== 'all-to-all' && f.phase !== 'ring')) return comm;
    if (f.phase === 'ring' && link !== 'ring') return comm;
    const op = f.phase === 'ring' ? 'send' : 'allToAllV';
    const real = comm[op].bind(comm) as (...a: unknown[]) => Promise<unknown>;
    const struck = async (...args: unknown[]) => {
      if (this.fires(f.phase)) await this.strike();
      return real(...args);
    };
    // every other member is the real communicator's, bound to it (its state stays in one object)
    return new Proxy(comm, {
      get(target, prop) {
        if (prop === op) return struck;
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}
