import { Readable } from 'node:stream';
import type { RedisComponent } from '../../../core/config/load.js';
import type { RedisKeysOptions } from '../../../core/config/components/redis.js';
import { integrityError, sourceUnreachable, TykdrError } from '../../../core/errors.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { maxRdbVersion, releaseAtLeast } from '../formats/rdb-versions.js';
import { CommandEncoder, RespError, RespPipe, type RespReply } from '../protocol/resp-pipe.js';
import type { Source, SourceArtifact } from '../../../core/interfaces/source.js';
import { clusterMasters, slotLayout, uncoveredSlots, type ClusterMaster } from '../protocol/cluster.js';
import { connectRedis, connectTimeoutMs, explainRedisError, parseInfo, parseKeyspace, tlsOptions, type RedisAddress } from '../protocol/connection.js';
import { KEYS_FORMAT_VERSION, KeysStreamWriter, NO_EXPIRY, payloadRdbVersion } from '../formats/keys-format.js';
import { resolveAddress } from '../protocol/sentinel.js';
import { parseServerInfo, serverName } from '../protocol/server-info.js';

export interface KeysProgress {
  /** Keys written to the stream so far. */
  keys: number;
  /** Keys SCAN returned so far (all classes). */
  scanned: number;
  /** Keys INFO keyspace reported at the start (all classes and databases): the scan's rough total. */
  totalKeys: number;
}

export interface KeysSourceOptions {
  /** Called after every SCAN page. */
  onProgress?: (e: KeysProgress) => void;
}

const ACL_NEEDED = '+@connection +info +scan +dump +pttl +pexpiretime, +select for databases other than 0, +cluster|nodes on a cluster, and read access to the keys (~* or %R~*)';
/** Encoded bytes waiting for the consumer above which the scanning tasks wait (a page of 1,000 sessions is about 1 MB). */
const PENDING_LIMIT = 4 << 20;
const KEYS_DEFAULTS: RedisKeysOptions = { classes: ['must', 'should', 'quota', 'other'], databases: 'all', batchSize: 1000 };

interface Node extends RedisAddress {
  /** The cluster master's id; undefined for a standalone server. */
  id?: string;
  slots?: ClusterMaster['slots'];
}

interface Tally {
  records: number;
  scanned: number;
  vanished: number;
  perDb: Map<number, { keys: number; expires: number; classes: Record<KeyClass, number> }>;
  skipped: Record<KeyClass, number>;
  payloadVersions: Set<number>;
  perNode: Map<string, number>;
}

/**
 * Redis read key by key, for servers that refuse SYNC and CONFIG (ElastiCache, MemoryDB, Azure) and for
 * Redis Cluster (every master is scanned): SCAN, then pipelined DUMP + PEXPIRETIME (PTTL before Redis 7),
 * written as a tykdr keys stream (docs/KEYS-FORMAT.md). Only the configured Tyk key classes are dumped.
 *
 * Not a point-in-time snapshot: each key is read when the scan reaches it. consistentAt is the scan's start,
 * so every key is at least that new; a key written or deleted during the scan may or may not be included.
 * Memory: per master, one SCAN page of DUMP payloads in flight; up to PENDING_LIMIT encoded bytes (plus a page
 * per master) waiting for the consumer. The masters of a cluster are scanned in parallel.
 */
export class KeysSource implements Source {
  readonly kind = 'redis';
  readonly component: string;
  private readonly keys: RedisKeysOptions;

  constructor(
    private readonly cfg: RedisComponent,
    private readonly opts: KeysSourceOptions = {},
  ) {
    this.component = cfg.name;
    this.keys = cfg.keys ?? KEYS_DEFAULTS;
  }

  async check(signal?: AbortSignal): Promise<void> {
    const addr = await resolveAddress(this.cfg, signal);
    const client = await connectRedis({ ...this.cfg, db: 0 }, addr);
    try {
      const info = parseInfo(String(await client.info()));
      await this.nodes(client, info, addr);
      // Prove the ACL allows what open() will run, on one key if there is one (read-only).
      const [, keys] = (await client.scanBuffer('0', 'COUNT', 10)) as [Buffer, Buffer[]];
      if (keys[0]) {
        await client.dumpBuffer(keys[0]);
        await client.call(releaseAtLeast(info.redis_version, 7) ? 'PEXPIRETIME' : 'PTTL', keys[0]);
      }
    } catch (err) {
      throw this.explain(err, addr);
    } finally {
      client.disconnect();
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const startedAt = new Date();
    const addr = await resolveAddress(this.cfg, signal);
    const seed = await connectRedis({ ...this.cfg, db: 0 }, addr);
    let info: Record<string, string>;
    let nodes: Node[];
    try {
      info = parseInfo(String(await seed.info()));
      nodes = await this.nodes(seed, info, addr);
    } catch (err) {
      throw this.explain(err, addr);
    } finally {
      seed.disconnect();
    }
    const cluster = info.cluster_enabled === '1';
    const layoutBefore = cluster ? slotLayout(nodes.map((n) => ({ id: n.id!, host: n.host, port: n.port, slots: n.slots! }))) : '';
    const writer = new KeysStreamWriter(info.redis_version ?? 'unknown');
    const t: Tally = { records: 0, scanned: 0, vanished: 0, perDb: new Map(), skipped: emptyClassCounts(), payloadVersions: new Set(), perNode: new Map() };
    const keyspaceAtStart = new Map<number, { keys: number; expires: number }>();
    let expirySource: 'pexpiretime' | 'pttl' = 'pexpiretime';
    let finishedAt: Date | null = null;
    const self = this;

    async function* produce(): AsyncGenerator<Buffer> {
      const infos = new Map<Node, Record<string, string>>();
      for (const node of nodes) {
        const nodeInfo = await self.nodeInfo(node);
        infos.set(node, nodeInfo);
        for (const [db, c] of parseKeyspace(nodeInfo)) {
          const sum = keyspaceAtStart.get(db) ?? { keys: 0, expires: 0 };
          keyspaceAtStart.set(db, { keys: sum.keys + c.keys, expires: sum.expires + c.expires });
        }
      }
      const totalAtStart = total(keyspaceAtStart);
      // Every master is scanned at the same time (its databases one after another): each is its own Redis
      // process, so a cluster's backup takes about as long as its biggest master, not the sum of them. The
      // tasks append whole records to the one writer; this generator hands the bytes on as they come, and a
      // task waits while more than PENDING_LIMIT bytes are still waiting for the consumer (bounded memory).
      const ac = new AbortController();
      const onAbort = () => ac.abort(signal?.reason);
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let wake: (() => void) | null = null;
      const drained: Array<() => void> = [];
      const nudge = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      const room = async (): Promise<void> => {
        nudge();
        while (writer.pendingBytes > PENDING_LIMIT && !ac.signal.aborted) await new Promise<void>((r) => drained.push(r));
        ac.signal.throwIfAborted();
      };
      const scanNode = async (node: Node) => {
        const nodeInfo = infos.get(node)!;
        const pexpiretime = releaseAtLeast(nodeInfo.redis_version, 7);
        if (!pexpiretime) expirySource = 'pttl';
        const keyspace = parseKeyspace(nodeInfo);
        const dbs = self.keys.databases === 'all' ? [...keyspace.keys()] : self.keys.databases;
        for (const db of dbs) {
          const pipe = await self.openPipe(node, db, ac.signal);
          try {
            await self.scanDb(pipe, node, db, pexpiretime, writer, t, totalAtStart, room, ac.signal);
          } catch (err) {
            // A connection reset or closed mid-scan names the master and database it happened on.
            if (ac.signal.aborted || (err as Error)?.name === 'AbortError') throw err;
            throw self.explain(err, node, db);
          } finally {
            pipe.close();
          }
        }
      };
      let failure: { err: unknown } | undefined;
      let running = nodes.length;
      const tasks = nodes.map((node) =>
        scanNode(node)
          .catch((err: unknown) => {
            // The first failure wins; the aborts it causes in the other tasks are not reported.
            failure ??= { err };
            ac.abort(err);
          })
          .finally(() => {
            running--;
            nudge();
          }),
      );
      const release = () => {
        for (const r of drained.splice(0)) r();
      };
      try {
        for (;;) {
          if (failure) throw failure.err;
          if (writer.headerWritten && writer.pendingBytes > 0) {
            const chunk = writer.take();
            release();
            yield chunk;
            continue;
          }
          if (running === 0) break;
          await new Promise<void>((r) => (wake = r));
        }
        if (failure) throw (failure as { err: unknown }).err;
      } finally {
        // The consumer may stop early (an error downstream, an abort): stop the tasks and wait for them.
        ac.abort(new DOMException('the keys stream was closed', 'AbortError'));
        release();
        signal?.removeEventListener('abort', onAbort);
        await Promise.all(tasks);
      }
      if (cluster) await self.checkLayout(addr, layoutBefore);
      if (!writer.headerWritten) writer.header(maxRdbVersion(info.redis_version ?? '') ?? 0);
      finishedAt = new Date();
      yield writer.trailer();
    }

    const stream = Readable.from(produce(), { objectMode: false, highWaterMark: 1 << 20 });
    return {
      stream,
      format: 'keys',
      consistentAt: startedAt,
      finish: async () => {
        const end = finishedAt ?? new Date();
        const ms = end.getTime() - startedAt.getTime();
        const databases: Record<string, { keys: number; expires: number }> = {};
        const keyClasses: Record<string, Record<KeyClass, number>> = {};
        for (const [db, d] of [...t.perDb].sort((a, b) => a[0] - b[0])) {
          databases[String(db)] = { keys: d.keys, expires: d.expires };
          keyClasses[String(db)] = d.classes;
        }
        return {
          source: {
            address: `${addr.host}:${addr.port}`,
            resolved_via: addr.via,
            redis_version: info.redis_version,
            // The product and its own release ("Valkey 8.1.8"; Valkey's redis_version is 7.2.4).
            server: serverName(parseServerInfo(info)),
            redis_mode: info.redis_mode,
            role: info.role,
            transfer: 'keys',
            keys_format_version: KEYS_FORMAT_VERSION,
            payload_rdb_version: writer.maxPayloadVersion || (maxRdbVersion(info.redis_version ?? '') ?? 0),
            ...(t.payloadVersions.size > 1 ? { payload_rdb_versions: [...t.payloadVersions].sort((a, b) => a - b) } : {}),
            expiry_source: expirySource,
            ...(cluster
              ? { cluster: { masters: nodes.map((n) => ({ address: `${n.host}:${n.port}`, id: n.id, slots: n.slots!.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(','), keys: t.perNode.get(`${n.host}:${n.port}`) ?? 0 })) } }
              : {}),
            tyk_db: this.cfg.db,
            classes: this.keys.classes,
            databases,
            total_keys: t.records,
            key_classes: keyClasses,
            skipped_classes: t.skipped,
            scanned: t.scanned,
            vanished_during_scan: t.vanished,
            keyspace_at_start: Object.fromEntries([...keyspaceAtStart].map(([db, c]) => [String(db), c])),
            scan_started_at: startedAt.toISOString(),
            scan_finished_at: end.toISOString(),
            keys_per_second: ms > 0 ? Math.round((t.records * 1000) / ms) : t.records,
            stream_bytes: writer.bytes,
          },
        };
      },
    };
  }

  /** The servers to scan: the address itself, or every slot-owning master of a cluster. */
  private async nodes(client: Parameters<typeof clusterMasters>[0], info: Record<string, string>, addr: RedisAddress): Promise<Node[]> {
    if (info.cluster_enabled !== '1') return [addr];
    const where = `Redis Cluster at ${addr.host}:${addr.port}`;
    if (this.keys.databases !== 'all' && this.keys.databases.some((d) => d !== 0)) {
      throw new TykdrError('badInput', `components.${this.cfg.name}.keys.databases lists ${this.keys.databases.join(', ')}, but ${where} has only database 0`, {
        fix: `set components.${this.cfg.name}.keys.databases to [0] or "all"`,
      });
    }
    const masters = await clusterMasters(client, addr);
    const gaps = uncoveredSlots(masters);
    if (gaps.length > 0) {
      throw sourceUnreachable(
        `${where}: no healthy master serves slots ${gaps.slice(0, 5).join(', ')}${gaps.length > 5 ? ', ...' : ''}; a key-level backup would miss their keys`,
        'wait until CLUSTER INFO says cluster_state:ok (a failover finishing), then back up again',
      );
    }
    return masters.map((m) => ({ host: m.host, port: m.port, via: `cluster master ${m.id.slice(0, 8)}`, id: m.id, slots: m.slots }));
  }

  private async nodeInfo(node: Node): Promise<Record<string, string>> {
    const c = await connectRedis({ ...this.cfg, db: 0 }, node);
    try {
      return parseInfo(String(await c.info()));
    } catch (err) {
      throw this.explain(err, node);
    } finally {
      c.disconnect();
    }
  }

  private async openPipe(node: Node, db: number, signal?: AbortSignal): Promise<RespPipe> {
    try {
      return await RespPipe.open({
        host: node.host,
        port: node.port,
        username: this.cfg.username,
        password: this.cfg.password?.reveal(),
        tls: tlsOptions(this.cfg),
        db,
        connectTimeoutMs: connectTimeoutMs(this.cfg),
        signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw this.explain(err, node, db);
    }
  }

  /**
   * One database of one server: SCAN pages, each followed by DUMP + expiry for its keys of the taken
   * classes, in one round trip together with the next SCAN. While Redis answers page n+1, page n's
   * records wait for the consumer in the writer; `room()` lets the consumer know, and waits while too
   * many bytes are waiting.
   */
  private async scanDb(
    pipe: RespPipe,
    node: Node,
    db: number,
    pexpiretime: boolean,
    writer: KeysStreamWriter,
    t: Tally,
    totalKeys: number,
    room: () => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    const taken = new Set<KeyClass>(this.keys.classes);
    const count = String(this.keys.batchSize);
    const where = `${node.host}:${node.port}`;
    const enc = new CommandEncoder();
    enc.command('SCAN', '0', 'COUNT', count);
    let page = this.scanPage((await pipe.exec(enc.take()))[0], node);
    for (;;) {
      signal?.throwIfAborted();
      const cursor = page[0].toString('latin1');
      const last = cursor === '0';
      const keys: Buffer[] = [];
      const classes: KeyClass[] = [];
      for (const k of page[1]) {
        t.scanned++;
        const cls = classifyKey(k);
        if (taken.has(cls)) {
          keys.push(k);
          classes.push(cls);
        } else {
          t.skipped[cls]++;
        }
      }
      for (const k of keys) {
        enc.command('DUMP', k);
        enc.command(pexpiretime ? 'PEXPIRETIME' : 'PTTL', k);
      }
      if (!last) enc.command('SCAN', cursor, 'COUNT', count);
      const request = pipe.exec(enc.take());
      request.catch(() => undefined); // awaited below; this keeps an abort during the wait from going unhandled
      await room();
      const replies = await request;
      const now = Date.now();
      let d = t.perDb.get(db);
      if (!d) t.perDb.set(db, (d = { keys: 0, expires: 0, classes: emptyClassCounts() }));
      for (let i = 0; i < keys.length; i++) {
        const payload = replies[2 * i];
        const ttl = replies[2 * i + 1];
        const bad = payload instanceof RespError ? payload : ttl instanceof RespError ? ttl : null;
        if (bad) {
          if (/^(MOVED|ASK) /.test(bad.message)) {
            throw integrityError(
              `Redis Cluster moved a key away from ${where} during the backup (${bad.message.split(' ')[0]}): a slot is being migrated, so keys may be missing`,
              'back up again when no resharding or failover is running',
            );
          }
          throw this.explain(new Error(bad.message), node, db, 'DUMP');
        }
        // A null payload or -2: the key was deleted or expired after SCAN listed it.
        if (payload === null || ttl === -2) {
          t.vanished++;
          continue;
        }
        const p = payload as Buffer;
        const n = ttl as number;
        const expireAt = n < 0 ? NO_EXPIRY : pexpiretime ? n : now + n;
        const version = payloadRdbVersion(p);
        if (!writer.headerWritten) writer.header(version);
        t.payloadVersions.add(version);
        writer.record(db, keys[i]!, expireAt, p);
        t.records++;
        d.keys++;
        if (expireAt !== NO_EXPIRY) d.expires++;
        d.classes[classes[i]!]++;
        t.perNode.set(where, (t.perNode.get(where) ?? 0) + 1);
      }
      this.opts.onProgress?.({ keys: t.records, scanned: t.scanned, totalKeys });
      if (last) break;
      page = this.scanPage(replies[replies.length - 1], node);
    }
    await room();
  }

  private scanPage(r: RespReply | undefined, node: Node): [Buffer, Buffer[]] {
    if (r instanceof RespError) throw this.explain(new Error(r.message), node, undefined, 'SCAN');
    if (!Array.isArray(r) || r.length !== 2 || !Buffer.isBuffer(r[0]) || !Array.isArray(r[1])) {
      throw sourceUnreachable(`Redis at ${node.host}:${node.port} answered SCAN with something that is not a SCAN reply`);
    }
    return r as [Buffer, Buffer[]];
  }

  /** A slot that changed owner during the scan may have moved keys past it: the backup cannot be trusted. */
  private async checkLayout(addr: RedisAddress, before: string): Promise<void> {
    const seed = await connectRedis({ ...this.cfg, db: 0 }, addr);
    let after: string;
    try {
      after = slotLayout(await clusterMasters(seed, addr));
    } catch (err) {
      throw this.explain(err, addr);
    } finally {
      seed.disconnect();
    }
    if (after !== before) {
      throw integrityError(
        `Redis Cluster at ${addr.host}:${addr.port} changed its slot layout during the backup (resharding or failover): keys that moved between masters may be missing`,
        'back up again when no resharding or failover is running',
      );
    }
  }

  /** Connection and permission failures, with the ACL the key-level mode needs. */
  private explain(err: unknown, node: RedisAddress, db?: number, doing?: string): Error {
    if (err instanceof TykdrError) return err;
    const msg = String((err as Error)?.message ?? err).split('\n')[0]!;
    const user = this.cfg.username ?? 'default';
    if (/NOPERM/i.test(msg)) {
      return sourceUnreachable(
        `components.${this.cfg.name}: Redis at ${node.host}:${node.port}: user "${user}" may not ${doing ?? 'run a command the key-level backup needs'}${db !== undefined ? ` in database ${db}` : ''} (${msg})`,
        `grant the ACL user ${ACL_NEEDED}`,
        err,
      );
    }
    if (/unknown command/i.test(msg) && /CLUSTER|SCAN|DUMP/i.test(msg)) {
      return sourceUnreachable(`components.${this.cfg.name}: Redis at ${node.host}:${node.port} refused a command the key-level backup needs (${msg})`, `allow ${ACL_NEEDED}`, err);
    }
    if (doing !== undefined && !/ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection is closed|WRONGPASS|NOAUTH/i.test(msg)) {
      return sourceUnreachable(`components.${this.cfg.name}: Redis at ${node.host}:${node.port} failed ${doing}${db !== undefined ? ` in database ${db}` : ''}: ${msg}`, undefined, err);
    }
    return explainRedisError(err, { ...this.cfg, db: db ?? 0 }, node);
  }
}

function total(keyspace: Map<number, { keys: number }>): number {
  let n = 0;
  for (const c of keyspace.values()) n += c.keys;
  return n;
}
