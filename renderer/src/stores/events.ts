/**
 * One subscription to the lab's events for the whole renderer: stores register
 * handlers by event kind. Subscribing once (not once per store or view) keeps
 * a single listener on the IPC channel / WebSocket however often views mount.
 */
import type { LabEvent } from '../../../main/lab/contract';
import { lab } from '../api';

type Kind = LabEvent['kind'];
type Handler<K extends Kind> = (e: Extract<LabEvent, { kind: K }>) => void;

const handlers = new Map<Kind, Set<(e: LabEvent) => void>>();
let unsubscribe: (() => void) | null = null;

export function onLabEvent<K extends Kind>(kind: K, handler: Handler<K>): () => void {
  if (!unsubscribe) unsubscribe = lab().onEvent((e) => handlers.get(e.kind)?.forEach((h) => h(e)));
  const set = handlers.get(kind) ?? new Set();
  set.add(handler as (e: LabEvent) => void);
  handlers.set(kind, set);
  return () => void set.delete(handler as (e: LabEvent) => void);
}

/** Drops the subscription (tests swap the lab between cases). */
export function resetLabEvents(): void {
  unsubscribe?.();
  unsubscribe = null;
  handlers.clear();
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
