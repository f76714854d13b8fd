import type { RedisComponent } from '../../../core/config/load.js';
import { parseDuration } from '../../../core/duration.js';
import { sentinelView } from '../protocol/sentinel.js';
import { connectTarget, readInfo, resolveRestoreTarget } from '../protocol/target-connection.js';
import { replicasOf } from './redis-checks.js';

const POLL_MS = 200;

export type Settled =
  | { status: 'settled'; waitedMs: number; replicas: string[] }
  | { status: 'moved'; to: string }
  | { status: 'unsettled'; why: string; waitedMs: number };

/**
 * After a restore through Sentinel was written and checked on `master`: waits until no failover can lose it. A
 * failover promotes one of the master's replicas, and the old master then resyncs from it; so every replica a
 * sentinel could promote (listed healthy by any sentinel) must be attached to the master and have its offset
 * at the end of the restore, and no sentinel may be in the middle of a failover. Sentinel names a new master
 * only about a second after it promoted a replica: until then the master is unchanged, the promoted replica
 * no longer attached. A replica that is down stops counting once Sentinel flags it (down-after-milliseconds).
 *
 * Resolves 'moved' when Sentinel names another master meanwhile, 'unsettled' when the time is up (the larger
 * of restore.replicaCatchUpTimeout and down-after-milliseconds plus 5 s).
 */
export async function waitSentinelSettled(
  c: RedisComponent,
  master: { display: string; runId: string },
  signal: AbortSignal,
  /** Called once, when the first look finds it not settled (so a long wait is not a silent one). */
  onWait?: (why: string) => void,
): Promise<Settled> {
  const started = Date.now();
  const target = await resolveRestoreTarget(c, signal);
  if (target.display !== master.display) return { status: 'moved', to: target.display };
  const client = await connectTarget(target, 0, signal);
  try {
    const info = () => readInfo(client, 'replication');
    const first = await info();
    const masterOffset = Number(first.master_repl_offset ?? 0);
    let limitMs = parseDuration(c.restore.replicaCatchUpTimeout) ?? 120_000;
    let why = '';
    for (;;) {
      signal.throwIfAborted();
      const view = await sentinelView(c, signal);
      limitMs = Math.max(limitMs, view.downAfterMs + 5000);
      if (view.master !== master.display) return { status: 'moved', to: view.master };
      const attached = replicasOf(await info());
      const behind = view.replicas.filter((r) => !attached.some((a) => a.address === r && a.state === 'online' && a.offset >= masterOffset));
      if (view.failover === null && behind.length === 0) return { status: 'settled', waitedMs: Date.now() - started, replicas: view.replicas };
      const first = why === '';
      why = view.failover ?? `Sentinel lists ${behind.join(', ')} as ${behind.length === 1 ? 'a replica' : 'replicas'} of ${master.display}, not attached to it at its offset ${masterOffset}`;
      if (first) onWait?.(why);
      if (Date.now() - started > limitMs) return { status: 'unsettled', why, waitedMs: Date.now() - started };
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    client.disconnect();
  }
}
