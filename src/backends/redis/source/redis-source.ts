import { addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RedisComponent } from '../../../core/config/load.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { badInput } from '../../../core/errors.js';
import type { Source, SourceArtifact } from '../../../core/interfaces/source.js';
import { connectTimeoutMs, explainRedisError, parseInfo, stallTimeoutMs, tlsOptions, type RedisAddress } from '../protocol/connection.js';
import { CommandEncoder, RespError, RespPipe, RespStallError } from '../protocol/resp-pipe.js';
import { RdbInspector } from '../formats/rdb-inspector.js';
import { openRdbStream, type RdbStream } from './replication.js';
import { resolveAddress } from '../protocol/sentinel.js';
import { parseServerInfo, serverName } from '../protocol/server-info.js';

/**
 * Redis as an RDB snapshot streamed over the replication protocol, as `redis-cli --rdb` does. The RDB is
 * validated as it passes (structure, EOF marker, CRC64) and its keys are counted per database and per
 * Tyk key class, without buffering the dump.
 */
export class RedisSource implements Source {
  readonly kind = 'redis';
  readonly component: string;

  /**
   * `via` replaces the RDB transfer (point-in-time capture hands in the RDB of its PSYNC, taken at `addr`)
   * and adds facts to the manifest's (the replication id and offset the RDB is consistent at).
   */
  constructor(
    private readonly cfg: RedisComponent,
    private readonly via?: { addr: RedisAddress; rdb: RdbStream; facts: Record<string, unknown> },
  ) {
    this.component = cfg.name;
  }

  async check(signal?: AbortSignal): Promise<void> {
    const addr = await resolveAddress(this.cfg, signal);
    this.refuseCluster(await this.info(addr, 'cluster', signal), addr);
  }

  /**
   * INFO over a plain RESP connection (AUTH, SELECT and PING first, as ioredis would): an RDB backup needs
   * nothing else from a client library, and loading ioredis cost it ~0.05 s of start-up before SYNC.
   */
  private async info(addr: RedisAddress, section: string | undefined, signal?: AbortSignal): Promise<Record<string, string>> {
    let pipe: RespPipe | undefined;
    try {
      pipe = await RespPipe.open({
        host: addr.host,
        port: addr.port,
        username: this.cfg.username,
        password: this.cfg.password?.reveal(),
        tls: tlsOptions(this.cfg),
        db: this.cfg.db ?? 0,
        connectTimeoutMs: connectTimeoutMs(this.cfg),
        idleTimeoutMs: stallTimeoutMs(this.cfg),
        signal,
      });
      const enc = new CommandEncoder();
      if (section === undefined) enc.command('INFO');
      else enc.command('INFO', section);
      const [reply] = await pipe.exec(enc.take());
      if (reply instanceof RespError) throw new Error(reply.message);
      return parseInfo(Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply));
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      // Worded as a client's command timeout: explainRedisError names the stallTimeout setting for it.
      throw explainRedisError(err instanceof RespStallError ? new Error('Command timed out', { cause: err }) : err, this.cfg, addr);
    } finally {
      pipe?.close();
    }
  }

  /** An RDB from one cluster node holds only that node's slots: a silent partial backup. */
  private refuseCluster(info: Record<string, string>, addr: { host: string; port: number }): void {
    if (info.cluster_enabled === '1') {
      throw badInput(
        `Redis at ${addr.host}:${addr.port} runs in cluster mode: an RDB of one node holds only the slots that node serves`,
        `back up a Redis Cluster with components.${this.cfg.name}.mode: keys (it scans every master)`,
      );
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const addr = this.via?.addr ?? (await resolveAddress(this.cfg, signal));
    const info = await this.info(addr, undefined, signal);
    this.refuseCluster(info, addr);
    let rdb: RdbStream;
    try {
      rdb = this.via?.rdb ?? await openRdbStream({
        host: addr.host,
        port: addr.port,
        username: this.cfg.username,
        password: this.cfg.password?.reveal(),
        tls: tlsOptions(this.cfg),
        connectTimeoutMs: connectTimeoutMs(this.cfg),
        idleTimeoutMs: stallTimeoutMs(this.cfg),
        idleSetting: `components.${this.cfg.name}.stallTimeout`,
        signal,
      });
    } catch (err) {
      throw explainRedisError(err, this.cfg, addr);
    }
    const classes: Record<string, Record<KeyClass, number>> = {};
    const inspector = new RdbInspector({
      // The listener only classifies the key: no copy of each key.
      borrowKeys: true,
      onKey: (db, key) => {
        const counts = (classes[db] ??= emptyClassCounts());
        counts[classifyKey(key)]++;
      },
    });
    // Errors of either side reach the consumer through the inspector (pipeline destroys it with them).
    pipeline(rdb.stream, inspector).catch(() => undefined);
    // A small RDB may be whole before the consumer reads it: an abort still ends the stream with an AbortError.
    if (signal) addAbortSignal(signal, inspector);
    return {
      stream: inspector,
      format: 'rdb',
      consistentAt: rdb.startedAt,
      finish: async () => {
        const f = inspector.facts();
        return {
          source: {
            address: `${addr.host}:${addr.port}`,
            resolved_via: addr.via,
            redis_version: info.redis_version,
            // The product and its own release ("Valkey 8.1.8"; Valkey's redis_version is 7.2.4).
            server: serverName(parseServerInfo(info)),
            redis_mode: info.redis_mode,
            role: info.role,
            transfer: rdb.transfer,
            rdb_version: f.rdbVersion,
            rdb_checksum: f.checksum,
            rdb_redis_ver: f.aux['redis-ver'],
            rdb_ctime: f.aux.ctime,
            tyk_db: this.cfg.db,
            databases: f.databases,
            total_keys: f.totalKeys,
            key_classes: classes,
            ...this.via?.facts,
          },
        };
      },
    };
  }
}
