import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import type { RedisRestoreInput } from './restore-types.js';
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { parseDuration } from '../../../core/duration.js';
import { integrityError, TykdrError } from '../../../core/errors.js';
import { compressedStaged, streamStaged, type CompressedStaged } from '../../../core/restore/staging.js';
import type { KeyClass } from '../../../core/tyk/key-classes.js';
import { inspectRdbEvidence, type RdbEvidence } from './keys-inspect.js';
import { sleep } from '../../../core/util/abort.js';
import type { ClusterTarget } from './cluster-target.js';
import { ReplicaFeed } from './replica-feed.js';
import { evidenceFromStaged, type ModeContext, type ModeResult } from './restore-modes.js';
import { explainTargetError, keyspaceOf, readInfo } from '../protocol/target-connection.js';
import { stallTimeoutMs } from '../protocol/connection.js';

/**
 * restore.load replication: a live restore of an RDB snapshot into a target that holds no key, loaded by the
 * target itself as a replica of tykdr. tykdr listens (replica-feed.ts), sets a one-time masterauth, sends
 * REPLICAOF to the target, serves it the staged RDB (already proven intact by staging, and read whole by the
 * inspection) as a full sync, waits until it has loaded it, and makes it a master again (REPLICAOF NO ONE).
 * The target loads at its own RDB load speed instead of one SET or RESTORE per key.
 *
 * Whatever happens, the target ends a master with its settings as before (masterauth, repl-diskless-load),
 * holding no key or every key of the file, and the error says which; only a kill -9 of tykdr mid-load leaves
 * it a replica of an address that no longer answers (the next restore refuses it, naming that address).
 */

/** Refused before anything on the target changed: `auto` falls back to RESTORE per key. */
export class ReplicationNotUsed extends Error {}

/** How long the target may take to connect to tykdr's listener after REPLICAOF. */
const CONNECT_MS = 10_000;
/** INFO polls while the target loads: the end of the load is seen within this (as rdb-file-swap.ts polls its start). */
const POLL_MS = 25;
/** How long putting the target back waits for a load it cannot stop (LOADING). */
const UNDO_MS = 8_000;

/** Why a load by replication does not fit this target; null when it does (the snapshot's classes: restore-redis.ts). */
export function replicationMisfit(ctx: Pick<ModeContext, 'facts' | 'target'>, cluster: ClusterTarget | null): string | null {
  const { facts, target } = ctx;
  if (cluster) return 'the target is a Redis Cluster';
  if (!facts) return 'the target did not answer before the restore';
  if (facts.keys > 0) return `the target holds ${facts.keys} key(s): a full sync would replace them all, and a live restore keeps the keys the snapshot lacks`;
  // Resolved through Sentinel (a target given by address in restore.target is not): it would see its master turn into a replica.
  if (target.address.via !== 'config') return 'Sentinel watches the target: it would see its master turn into a replica';
  if (target.conn.tls) return 'the target is reached over TLS: the replication link from it to tykdr would carry the keys in clear';
  return null;
}

/**
 * Loads the staged RDB into the target by replication (see above). Throws ReplicationNotUsed when the target
 * refuses before it changed (no permission for CONFIG or REPLICAOF, TLS replication, the listener cannot
 * start) or never connected to the listener (then it is a master again, unchanged).
 */
export async function runReplicationLoad(ctx: ModeContext, evidenceWanted: EvidenceWanted | null): Promise<ModeResult> {
  const { input, target, details } = ctx;
  const r = input.component.restore;
  const signal = input.signal;
  const client = await ctx.pool.db(0);
  const at = `components.${input.component.name}.restore.target: Redis at ${target.display}`;
  const refused = (err: unknown) => /NOPERM|unknown command|unknown subcommand|ERR.*(disabled|not allowed)/i.test(String((err as Error)?.message));

  const get = async (name: string): Promise<string | null> => {
    const res = (await client.config('GET', name)) as string[];
    return res.length >= 2 ? res[1]! : null;
  };
  let before: { tls: string | null; diskless: string | null; masterauth: string | null; maxmemory: string | null };
  try {
    before = { tls: await get('tls-replication'), diskless: await get('repl-diskless-load'), masterauth: await get('masterauth'), maxmemory: await get('maxmemory') };
  } catch (err) {
    if (refused(err)) throw new ReplicationNotUsed(`user "${target.conn.username ?? 'default'}" may not read the target's replication settings (CONFIG GET)`);
    throw explainTargetError(err, target, 'read its replication settings (CONFIG GET)');
  }
  if (before.tls === 'yes') throw new ReplicationNotUsed('the target replicates over TLS (tls-replication yes), which tykdr does not serve');
  // A replica loads past maxmemory (it leaves eviction to its master); a master again, it would then evict keys or
  // refuse writes, depending on maxmemory-policy, after a restore that looked whole. RESTORE meets the limit key by key.
  if (Number(before.maxmemory ?? 0) > 0) {
    throw new ReplicationNotUsed(`the target has maxmemory ${before.maxmemory} bytes: as a replica it would load past it, and as a master again evict keys or refuse writes (CONFIG SET maxmemory 0 for the restore lifts this)`);
  }

  const host = listenHost(r.replicationAddress, client);
  const port = Number(r.replicationAddress?.split(':')[1] ?? 0);
  // Staged still compressed: decompressed as it is sent, and read for the evidence on the way (one decompression).
  const compressed = input.stagedCompression;
  const size = compressed ? Number(input.manifest.artifact.plaintext_bytes) : (await stat(input.rdbFile)).size;
  let teed: Promise<RdbEvidence> | null = null;
  const open = (): Readable => {
    if (!compressed) return createReadStream(input.rdbFile, { highWaterMark: 1 << 20 });
    const plain = streamStaged(compressedRdb(input)).stream;
    if (!evidenceWanted) return plain;
    const side = sideStream();
    teed = inspectRdbEvidence(side, { ...evidenceWanted, name: input.rdbFile, signal });
    // A failed evidence read only costs the evidence (evidenceFromStaged says so): the load goes on.
    teed.catch(() => side.resume());
    return pipeline(plain, tee(side), () => undefined);
  };
  const password = randomBytes(24).toString('hex');
  let feed: ReplicaFeed;
  try {
    feed = await ReplicaFeed.listen({ open, size, host, port, password });
  } catch (err) {
    throw new ReplicationNotUsed(`tykdr cannot listen on ${host}:${port} for the target (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; restore.replicationAddress)`);
  }
  const address = `${feed.address.host}:${feed.address.port}`;
  const changed: Array<[string, string]> = [];
  let replicating = false;
  let promoted = false;
  const started = Date.now();
  // Puts the target back as it was: a master, its settings restored. Each step on its own, so one failing does not skip the
  // rest. Once: a later call gets the first one's result (a target that stopped answering costs stallTimeout per step).
  let undone: Promise<string[]> | null = null;
  const undo = (): Promise<string[]> => (undone ??= undoOnce());
  const undoOnce = async (): Promise<string[]> => {
    const failed: string[] = [];
    await feed.close();
    if (replicating && !promoted) {
      // A target in the middle of loading answers LOADING until the load ends: a load from the socket ends as the
      // listener closes; one from a fully received file runs to its end first. Bounded: a signal's grace is short.
      const until = Date.now() + UNDO_MS;
      for (;;) {
        const err = await client.call('REPLICAOF', 'NO', 'ONE').then(() => null, (e: unknown) => e as Error);
        if (err === null) {
          promoted = true;
          break;
        }
        if (!/^LOADING/.test(err.message) || Date.now() > until) {
          failed.push(`REPLICAOF NO ONE (${err.message.split('\n')[0]})`);
          break;
        }
        await sleep(50);
      }
    }
    for (const [name, value] of changed.splice(0).reverse()) await client.config('SET', name, value).catch(() => failed.push(`CONFIG SET ${name}`));
    return failed;
  };
  try {
    try {
      await client.config('SET', 'masterauth', password);
      changed.push(['masterauth', before.masterauth ?? '']);
      // Loading from the socket into the empty database overlaps the transfer with the load; refused, the target writes the file first.
      if (before.diskless === 'disabled') {
        await client.config('SET', 'repl-diskless-load', 'on-empty-db').then(() => changed.push(['repl-diskless-load', 'disabled']), () => undefined);
      }
      // From the moment REPLICAOF is sent the target may be a replica of tykdr: a reply lost to a stall or a cut
      // connection does not undo it. Only an error reply (a refusal) means it is not.
      replicating = true;
      await client.call('REPLICAOF', feed.address.host, String(feed.address.port)).catch((err: unknown) => {
        if ((err as Error)?.name === 'ReplyError') replicating = false;
        throw err;
      });
    } catch (err) {
      // Maybe a replica now: the catch below puts it back and says in which state it is.
      if (replicating) throw explainTargetError(err, target, 'make it a replica of tykdr (REPLICAOF)');
      await undo();
      if (refused(err)) throw new ReplicationNotUsed(`user "${target.conn.username ?? 'default'}" may not change the target's replication (${String((err as Error).message).split('\n')[0]})`);
      throw explainTargetError(err, target, 'make it a replica of tykdr (CONFIG SET, REPLICAOF)');
    }
    if (!(await feed.waitForReplica(CONNECT_MS, signal))) {
      signal?.throwIfAborted();
      const failed = await undo();
      // Still a replica: the catch below says so, naming what failed and what to run. A master again: said here.
      const leftover = promoted && failed.length > 0 ? `; it is a master again, but putting back its settings failed (${failed.join(', ')})` : '';
      const putBack = leftover ? `; then set masterauth (and repl-diskless-load) on ${target.display} back to what they were` : '';
      if (failed.some((f) => /Command timed out/.test(f))) {
        const setting = `components.${input.component.name}.stallTimeout`;
        throw new TykdrError('targetError', `${at} stopped answering while tykdr waited for it to connect to ${address}: a command got no reply within ${target.conn.stallTimeout ?? '60s'} (${setting})${leftover}`, {
          fix: `check that Redis at ${target.display} answers (a blocked or overloaded server), then restore again; on a slow link raise ${setting}${putBack}`,
        });
      }
      if (failed.length > 0) {
        throw new TykdrError('targetError', `${at} did not connect to tykdr at ${address}${leftover || ', and putting it back failed'}`, {
          fix: leftover ? `set masterauth (and repl-diskless-load) on ${target.display} back to what they were` : `run REPLICAOF NO ONE on ${target.display}`,
        });
      }
      throw new ReplicationNotUsed(`the target did not connect to tykdr at ${address} within ${CONNECT_MS / 1000} s (set restore.replicationAddress to an address it reaches)`);
    }
    details.load = 'replication';
    details.replication_address = address;
    details.diskless_load = before.diskless !== 'disabled' || changed.some(([n]) => n === 'repl-diskless-load');
    await waitLoaded(ctx, client, feed, Number(input.manifest.source.total_keys ?? 0), size, started, at);
    await client.call('REPLICAOF', 'NO', 'ONE');
    promoted = true;
    const failed = await undo();
    if (failed.length > 0) ctx.warnings.push(`${at}: the restore could not put back its settings (${failed.join(', ')}): check masterauth and repl-diskless-load`);
  } catch (err) {
    if (!replicating || promoted) throw err;
    const failed = await undo().catch(() => ['all']);
    const keysNow = failed.length > 0 ? null : await readInfo(client, 'keyspace').then((i) => [...keyspaceOf(i).values()].reduce((a, b) => a + b, 0), () => null);
    const state = failed.length > 0
      ? `; it may still be a replica of ${address}, which is closed: run REPLICAOF NO ONE on it (${failed.join(', ')} failed)`
      : `; it is a master again and holds ${keysNow ?? 'an unknown number of'} key(s) (${keysNow === 0 ? 'none of the snapshot' : 'the load may have finished'})`;
    if (err instanceof TykdrError) throw new TykdrError(err.kind, `${err.message}${state}`, { ...(err.fix ? { fix: err.fix } : {}), cause: err });
    if (err instanceof Error && err.name === 'AbortError') throw err;
    throw explainTargetError(new Error(`${(err as Error).message}${state}`), target, 'load the snapshot by replication');
  }
  const loadMs = Date.now() - started;
  const info = await readInfo(client, 'keyspace').catch(() => ({}) as Record<string, string>);
  const loaded = [...keyspaceOf(info).values()].reduce((a, b) => a + b, 0);
  Object.assign(details, {
    classes: [...r.classes],
    databases: [...keyspaceOf(info).keys()],
    snapshot_keys: input.manifest.source.total_keys,
    keys_restored: loaded,
    rdb_bytes: size,
    replication_load_ms: loadMs,
    keys_per_second: loadMs > 0 ? Math.round((loaded / loadMs) * 1000) : null,
  });
  // The evidence (expected counts, payload sample) was read from the staged RDB while the target loaded it.
  const read = ctx.rdbEvidence ?? teed;
  const evidence = read ? await evidenceFromStaged(ctx, read) : { sample: null };
  return { ...evidence, loadedFile: false, loadedByReplication: true };
}

/** The staged RDB kept compressed, as core/restore/staging.ts reads it. */
export function compressedRdb(input: RedisRestoreInput): CompressedStaged {
  return compressedStaged(input.rdbFile, input.stagedCompression!, input.manifest.artifact);
}

/** What the evidence read looks for (as readRdbEvidence in restore-redis.ts). */
export interface EvidenceWanted {
  restored: Set<KeyClass>;
  sampleSize: number;
  expectation: boolean;
}

/**
 * The side of a tee (below), for a reader that iterates it (for await): in object mode it hands over each chunk as it
 * came. A byte stream's iterator reads all it has buffered at once, and that read copies its chunks into one buffer
 * (0.19 s of a 1.3 s live stage's main thread, for a 690 MB RDB, in a CPU profile). Bounded on both sides: 8 chunks
 * waiting to be read, 4 MiB waiting to be passed through.
 */
export function sideStream(): PassThrough {
  return new PassThrough({ readableObjectMode: true, readableHighWaterMark: 8, writableHighWaterMark: 4 << 20 });
}

/**
 * Passes every chunk on, and writes it to `side` too, waiting for it to drain. A side that was destroyed is skipped,
 * also while a chunk waits for it: its reader failed (and destroyed it) mid-stream, and a destroyed stream never drains.
 */
export function tee(side: PassThrough): Transform {
  let ended = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (side.destroyed || side.write(chunk)) {
        cb(null, chunk);
        return;
      }
      const go = () => {
        side.off('drain', go);
        side.off('close', go);
        cb(null, chunk);
      };
      side.on('drain', go);
      side.on('close', go);
    },
    flush(cb) {
      ended = true;
      side.end();
      cb();
    },
    // Destroyed after a clean end too (the pipeline is done): the side then keeps what it has not read yet. Destroyed
    // before its end, even without an error, the side fails too: its reader must never wait for bytes that cannot come.
    destroy(err, cb) {
      if (err) side.destroy(err);
      else if (!ended) side.destroy(new Error('the RDB stream was stopped before its end'));
      cb(err);
    },
  });
}

/** The address the target is told to connect to: the configured one, else this host's end of the connection to it. */
function listenHost(configured: string | undefined, client: Redis): string {
  if (configured) return configured.split(':')[0]!;
  const local = (client as unknown as { stream?: Socket }).stream?.localAddress ?? '127.0.0.1';
  return local.replace(/^::ffff:/, '');
}

/** Until the target has loaded the file and its link is up; a stall (nothing moved for stallTimeout) or loadTimeout fails it. */
async function waitLoaded(ctx: ModeContext, client: Redis, feed: ReplicaFeed, records: number, size: number, started: number, at: string): Promise<void> {
  const { input, target } = ctx;
  const r = input.component.restore;
  const stallMs = stallTimeoutMs(target.conn);
  const loadMs = parseDuration(r.loadTimeout) ?? 600_000;
  let last = '';
  let moved = Date.now();
  for (;;) {
    input.signal?.throwIfAborted();
    let info: Record<string, string>;
    try {
      info = { ...(await readInfo(client, 'replication')), ...(await readInfo(client, 'persistence')) };
    } catch (err) {
      throw explainTargetError(err, target, 'report its replication state (INFO)');
    }
    if (info.master_link_status === 'up' && info.loading !== '1' && info.master_sync_in_progress !== '1') return;
    if (feed.failed) {
      throw integrityError(`${at}: the snapshot could not be sent whole by replication: ${feed.dropped}`, 'stage the snapshot again; if it persists the snapshot is damaged');
    }
    if (feed.dropped && info.master_sync_in_progress !== '1' && info.loading !== '1') {
      throw new TykdrError('targetError', `${at} did not load the snapshot by replication: ${feed.dropped}`, {
        fix: "see the target's log (room in its dir for the transferred RDB, maxmemory, a module the RDB needs), or set restore.load: restore",
      });
    }
    const loadedBytes = Number(info.loading_loaded_bytes ?? 0);
    const fraction = info.loading === '1' ? loadedBytes / Math.max(1, Number(info.loading_total_bytes ?? size)) : 0;
    input.progress?.({ phase: 'load', keys: Math.round(fraction * records), totalKeys: records });
    const mark = `${feed.sent}/${info.master_sync_read_bytes ?? ''}/${loadedBytes}/${info.loading}/${info.master_link_status}`;
    const now = Date.now();
    if (mark !== last) {
      last = mark;
      moved = now;
    } else if (now - moved > stallMs) {
      throw new TykdrError('targetError', `${at} stalled while loading the snapshot by replication: nothing moved for ${Math.round((now - moved) / 1000)} s (components.${input.component.name}.stallTimeout is ${target.conn.stallTimeout ?? '60s'})`, {
        fix: "see the target's log, or set restore.load: restore",
      });
    }
    if (now - started > loadMs) {
      throw new TykdrError('targetError', `${at} did not finish loading the snapshot by replication within ${r.loadTimeout} (restore.loadTimeout)`, { fix: 'raise restore.loadTimeout' });
    }
    await sleep(POLL_MS, input.signal);
  }
}
