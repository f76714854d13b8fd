import { realpath } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { RedisComponent } from '../../../core/config/load.js';
import { badInput, TykdrError } from '../../../core/errors.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import { minRedisForRdb, readRdbHeaderVersion } from '../formats/rdb-versions.js';
import { chooseScratchBinary, type ServerBinary } from './scratch-binary.js';
import { explainTargetError, keyspaceOf, readInfo, type RestoreTarget } from '../protocol/target-connection.js';
import { maxDumpVersion, parseServerInfo, serverName } from '../protocol/server-info.js';

/** What the target is, read before anything is changed. */
export interface TargetFacts {
  /** redis_version: the Redis release the server reports (Valkey reports 7.2.4 for clients). */
  version: string;
  /** The product and its own release, for messages: "Valkey 8.1.8", "Redis 6.2.14". */
  name?: string;
  /** Newest RDB version it loads; null when its version string is not understood. */
  maxRdb: number | null;
  role: string;
  aof: boolean;
  cluster: boolean;
  replicas: number;
  keys: number;
  /** The master it replicates from, when it is a replica. */
  masterOf?: string;
  /** A replica whose link to its master is down. */
  masterLinkDown?: boolean;
}

export async function readTargetFacts(target: RestoreTarget, client: Redis, signal?: AbortSignal): Promise<TargetFacts> {
  signal?.throwIfAborted();
  let info: Record<string, string>;
  try {
    info = await readInfo(client);
  } catch (err) {
    throw explainTargetError(err, target, 'run INFO');
  }
  // The product's own version (valkey_version on Valkey, which reports redis_version 7.2.4 for clients).
  const server = parseServerInfo(info);
  return {
    version: server.redisCompatVersion,
    name: serverName(server),
    maxRdb: maxDumpVersion(server),
    role: info.role ?? 'unknown',
    aof: info.aof_enabled === '1',
    cluster: info.cluster_enabled === '1',
    replicas: Number(info.connected_slaves ?? 0),
    keys: [...keyspaceOf(info).values()].reduce((a, b) => a + b, 0),
    masterOf: info.master_host ? `${info.master_host}:${info.master_port}` : undefined,
    masterLinkDown: info.master_link_status === 'down',
  };
}

/** What a staged snapshot needs from its target: the RDB version it must load (0: unknown) and what it is. */
export interface SnapshotVersion {
  format: SnapshotFormat;
  /** RDB version of the RDB file, of the AOF's RDB-preamble base, or the highest of the DUMP payloads. */
  version: number;
  writtenBy: string;
}

export type SnapshotFormat = 'rdb' | 'aof' | 'keys';

/** The snapshot's RDB version (the larger of the manifest's and the staged file's header) and the Redis that wrote it. */
export async function snapshotRdb(manifest: ManifestComponent, rdbFile: string, signal?: AbortSignal, compression?: 'zstd' | 'gzip'): Promise<{ version: number; writtenBy: string }> {
  const header = await readRdbHeaderVersion(rdbFile, signal, compression);
  const listed = Number(manifest.source.rdb_version ?? 0);
  return { version: Math.max(header, Number.isFinite(listed) ? listed : 0), writtenBy: snapshotWriter(manifest) };
}

/** The server that wrote a snapshot, for messages: "Valkey 8.1.8", "Redis 6.2.14" (older manifests: the redis_version). */
export function snapshotWriter(manifest: ManifestComponent): string {
  const s = manifest.source;
  if (typeof s.server === 'string' && s.server) return s.server;
  const v = s.redis_version ?? s.rdb_redis_ver;
  return v === undefined ? 'an unknown server' : `Redis ${String(v)}`;
}

/** The artifact format of a snapshot component; throws when this tykdr does not know it. */
export function snapshotFormat(manifest: ManifestComponent, component: string): SnapshotFormat {
  const f = manifest.artifact.format;
  if (f === 'rdb' || f === 'aof' || f === 'keys') return f;
  throw badInput(`the snapshot's ${component} artifact has format "${f}", which this tykdr cannot restore`, 'restore with the tykdr release that took the snapshot, or a newer one');
}

const MODE_FOR: Record<SnapshotFormat, { fits: string[]; backup: string; file?: string }> = {
  rdb: { fits: ['live', 'rdb-file'], backup: 'an RDB (backup mode rdb)', file: 'rdb-file' },
  aof: { fits: ['live', 'aof-file'], backup: 'an AOF folder (backup mode aof)', file: 'aof-file' },
  keys: { fits: ['live'], backup: 'a key-level stream (backup mode keys), which has no file to place' },
};

/** restore.mode must suit what the snapshot holds: rdb-file places an RDB, aof-file an AOF folder, keys only restore live. */
export function checkModeFits(c: RedisComponent, format: SnapshotFormat): void {
  const m = MODE_FOR[format];
  if (m.fits.includes(c.restore.mode)) return;
  const where = `components.${c.name}.restore.mode`;
  throw badInput(
    `${where} is ${c.restore.mode}, but this snapshot of components.${c.name} is ${m.backup}`,
    `set ${where} to ${m.file ? `${m.file} (stop Redis, place the ${format === 'rdb' ? 'dump.rdb' : 'AOF folder'}, start it) or live` : 'live (RESTOREs every key into the running target)'}`,
  );
}

/** Config a file-level restore (rdb-file, aof-file) cannot run without, and setups it must not run in. Throws badInput. */
export function checkRdbFileConfig(c: RedisComponent): void {
  const where = `components.${c.name}.restore`;
  const mode = c.restore.mode;
  for (const key of ['dataDir', 'stopCommand', 'startCommand'] as const) {
    if (!c.restore[key]) {
      throw badInput(`${where}.${key} is not set, and mode ${mode} needs it`, `set ${where}.${key} (see \`tykdr init\` for an example), or use mode: live`);
    }
  }
  if (c.sentinel) {
    throw badInput(
      `${where}.mode is ${mode}, but components.${c.name} is watched by Sentinel: stopping the master would make Sentinel fail over to a replica, which would then overwrite the restored data`,
      `use ${where}.mode: live for a Sentinel-managed Redis`,
    );
  }
}

/**
 * Refuses a restore the target cannot take, before anything is changed: a replica, a cluster, an RDB
 * version newer than it loads, AOF in rdb-file mode.
 */
export function checkTargetAccepts(c: RedisComponent, target: RestoreTarget, facts: TargetFacts, snap: SnapshotVersion): void {
  const where = `components.${c.name}.restore`;
  const at = `target ${facts.name ?? `Redis ${facts.version}`} at ${target.display}`;
  const rdb = snap;
  if (facts.role !== 'master') {
    // A killed restore with restore.load replication leaves its target a replica of tykdr's closed listener.
    const orphan = facts.masterLinkDown
      ? `; its link to that master is down: if a killed tykdr restore (restore.load replication) left it so, that was tykdr's listener, and REPLICAOF NO ONE on ${target.display} makes it a master again`
      : '';
    throw new TykdrError('targetError', `${at} is a ${facts.role === 'slave' ? 'replica' : facts.role}${facts.masterOf ? ` of ${facts.masterOf}` : ''}: a restore must go to the master${orphan}`, {
      fix: `point ${where}.target at the master${c.sentinel ? '' : ' (or configure components.' + c.name + '.sentinel to find it)'}${orphan ? ', or run REPLICAOF NO ONE on it if it is the one a killed restore left' : ''}`,
    });
  }
  if (facts.cluster && snap.format !== 'keys') {
    throw new TykdrError('targetError', `${at} runs in cluster mode: tykdr restores a Redis Cluster only from key-level snapshots (backup mode keys)`, {
      fix: 'back up with mode: keys to restore into a cluster, restore this snapshot into a standalone Redis (or Sentinel master), or load it by hand per docs/FORMAT.md',
    });
  }
  if (snap.format === 'keys') {
    checkPayloadVersion(c, at, facts, snap);
  } else if (facts.maxRdb !== null && rdb.version > facts.maxRdb) {
    const min = minRedisForRdb(rdb.version);
    throw new TykdrError('targetError', `${at} cannot load RDB version ${rdb.version} (written by ${rdb.writtenBy}); it loads up to version ${facts.maxRdb}. Nothing was changed`, {
      fix: `restore into Redis ${min ?? 'newer than any known release'}${min ? ' or newer' : ''} (upgrade the target, or set ${where}.target to a newer server)`,
    });
  }
  if (c.restore.mode === 'rdb-file' && facts.aof) {
    throw new TykdrError('targetError', `${at} has AOF enabled (aof_enabled:1): on start it would load its append-only file and ignore the restored ${c.restore.dbfilename}. Nothing was changed`, {
      fix: `use ${where}.mode: live (copies keys into the running server), or disable appendonly on the target first (or back up with mode: aof and restore with mode: aof-file)`,
    });
  }
  if (c.restore.mode === 'aof-file' && !facts.aof) {
    throw new TykdrError('targetError', `${at} runs with appendonly no (aof_enabled:0): on start it would ignore the restored AOF folder and load its RDB. Nothing was changed`, {
      fix: `enable appendonly in the target's redis.conf (and CONFIG SET appendonly yes), or use ${where}.mode: live`,
    });
  }
}

/** A DUMP payload carries the RDB version it was serialized with; Redis refuses one newer than its own. */
export function checkPayloadVersion(c: RedisComponent, at: string, facts: { maxRdb: number | null }, snap: SnapshotVersion): void {
  if (facts.maxRdb === null || snap.version <= facts.maxRdb) return;
  const min = minRedisForRdb(snap.version);
  throw new TykdrError(
    'targetError',
    `${at} cannot RESTORE this snapshot: its DUMP payloads are RDB version ${snap.version} (taken from ${snap.writtenBy}), and it loads up to version ${facts.maxRdb}. ` +
      'A DUMP payload only loads into the same or a newer Redis. Nothing was changed',
    {
      fix: `restore into Redis ${min ?? 'newer than any known release'}${min ? ' or newer' : ''} (upgrade the target, or set components.${c.name}.restore.target to a newer server)`,
    },
  );
}

/**
 * aof-file mode, when the target lets us ask (CONFIG GET): its dir must be the configured dataDir and its
 * appendfilename the snapshot's (the manifest inside the folder is named after it; under another name
 * Redis would not find it and would start empty). Returns the folder name to restore into, and a warning
 * when the target could not be asked.
 */
export async function checkAofTarget(
  c: RedisComponent,
  target: RestoreTarget,
  client: Redis,
  staged: { dirName: string; appendfilename: string },
  signal?: AbortSignal,
): Promise<{ dirName: string; warning: string | null }> {
  signal?.throwIfAborted();
  const where = `components.${c.name}.restore`;
  let dir: string;
  let file: string;
  let dirName: string;
  try {
    dir = ((await client.config('GET', 'dir')) as string[])[1] ?? '';
    file = ((await client.config('GET', 'appendfilename')) as string[])[1] ?? '';
    dirName = ((await client.config('GET', 'appenddirname')) as string[])[1] ?? '';
  } catch {
    return {
      dirName: c.restore.appendDirName ?? staged.dirName,
      warning: `Redis at ${target.display} refused CONFIG GET: could not confirm that ${where}.dataDir is its data directory and that it uses appendfilename ${staged.appendfilename}`,
    };
  }
  const real = async (p: string) => realpath(p).catch(() => p);
  if (dir && (await real(dir)) !== (await real(c.restore.dataDir!))) {
    throw badInput(`${where}.dataDir is ${c.restore.dataDir}, but Redis at ${target.display} keeps its data in ${dir} (CONFIG GET dir)`, `set ${where}.dataDir to ${dir}`);
  }
  if (file && file !== staged.appendfilename) {
    throw new TykdrError('targetError', `Redis at ${target.display} uses appendfilename ${file}, but the snapshot's AOF files are named ${staged.appendfilename}: it would not find them and would start empty. Nothing was changed`, {
      fix: `set appendfilename "${staged.appendfilename}" in the target's redis.conf (restart it), or use ${where}.mode: live`,
    });
  }
  if (c.restore.appendDirName && dirName && c.restore.appendDirName !== dirName) {
    throw badInput(`${where}.appendDirName is ${c.restore.appendDirName}, but Redis at ${target.display} uses ${dirName} (CONFIG GET appenddirname)`, `set ${where}.appendDirName to ${dirName}, or leave it out`);
  }
  return { dirName: dirName || c.restore.appendDirName || staged.dirName, warning: null };
}

/**
 * The scratch server's binary (format aof, and the evidence of a file-mode restore): it must load the
 * snapshot and, in live mode, write DUMP payloads the target RESTOREs. See scratch-binary.ts.
 */
export async function checkScratchBinary(c: RedisComponent, facts: TargetFacts | null, rdb: { version: number; writtenBy: string }, live: boolean, multiPart: boolean, signal?: AbortSignal): Promise<{ binary: ServerBinary; picked: boolean }> {
  const where = `components.${c.name}.restore.redisServer`;
  const target = live && facts ? { maxRdb: facts.maxRdb, name: facts.name ?? `Redis ${facts.version}` } : undefined;
  return chooseScratchBinary(c.restore.redisServer, where, { snapshotRdb: rdb.version, writtenBy: rdb.writtenBy, target, multiPart }, signal);
}

/**
 * rdb-file mode, when the target lets us ask (CONFIG GET): its dir and dbfilename must be the configured
 * ones, or the restored file would go where Redis never reads it. Returns a warning when it cannot ask.
 */
export async function checkDataDir(c: RedisComponent, target: RestoreTarget, client: Redis, signal?: AbortSignal): Promise<string | null> {
  signal?.throwIfAborted();
  const where = `components.${c.name}.restore`;
  let dir: string;
  let file: string;
  try {
    dir = ((await client.config('GET', 'dir')) as string[])[1] ?? '';
    file = ((await client.config('GET', 'dbfilename')) as string[])[1] ?? '';
  } catch {
    return `Redis at ${target.display} refused CONFIG GET: could not confirm that ${where}.dataDir is its data directory`;
  }
  const real = async (p: string) => realpath(p).catch(() => p);
  if (dir && (await real(dir)) !== (await real(c.restore.dataDir!))) {
    throw badInput(`${where}.dataDir is ${c.restore.dataDir}, but Redis at ${target.display} keeps its data in ${dir} (CONFIG GET dir)`, `set ${where}.dataDir to ${dir}`);
  }
  if (file && file !== c.restore.dbfilename) {
    throw badInput(`${where}.dbfilename is ${c.restore.dbfilename}, but Redis at ${target.display} uses ${file} (CONFIG GET dbfilename)`, `set ${where}.dbfilename to ${file}`);
  }
  return null;
}
