import { Readable } from 'node:stream';
import type { RedisComponent } from '../../../core/config/load.js';
import { parseDuration } from '../../../core/duration.js';
import { badInput, integrityError, sourceUnreachable, TykdrError } from '../../../core/errors.js';
import { releaseAtLeast } from '../formats/rdb-versions.js';
import type { Source, SourceArtifact } from '../../../core/interfaces/source.js';
import { aofFileContent, captureAof, locateAof, readAofManifest, type AofCopyResult, type AofLayout, type Capture } from './aof-files.js';
import { RewriteGuard } from './aof-rewrite-guard.js';
import { connectRedis, explainRedisError, parseInfo, type RedisAddress } from '../protocol/connection.js';
import { resolveAddress } from '../protocol/sentinel.js';
import { tarStream } from './tar-stream.js';
import { parseServerInfo, serverName } from '../protocol/server-info.js';

const ACL = '+ping +info +config|get +config|set';

/**
 * Redis's multi-part AOF folder (Redis 7+), or the single AOF file of Redis before 7.0 (archived as the base of
 * a synthesized folder: see AofLayout.singleFile), copied as a tar stream by a tykdr that runs where the folder is
 * readable. Automatic rewrites are held off for the copy (RewriteGuard), the files are opened and sized
 * against Redis's own aof_current_size (so a folder of another Redis is refused), the live incremental file
 * is cut at its last complete command, and everything is validated as it streams: the manifest lists every
 * file, an RDB-preamble base passes the RDB inspector (structure, CRC-64), AOF parts are well-formed.
 *
 * consistentAt is when the files were opened: the copy holds every write Redis had appended by then.
 */
export class AofSource implements Source {
  readonly kind = 'redis';
  readonly component: string;

  constructor(private readonly cfg: RedisComponent) {
    this.component = cfg.name;
  }

  async check(signal?: AbortSignal): Promise<void> {
    const addr = await resolveAddress(this.cfg, signal);
    const client = await connectRedis(this.cfg, addr);
    try {
      const info = parseInfo(String(await client.info()));
      this.refuseUnsupported(info, addr);
      const layout = await locateAof(client, this.cfg, addr, !releaseAtLeast(info.redis_version, 7));
      await readAofManifest(layout, this.cfg.name);
    } catch (err) {
      throw this.explain(err, addr);
    } finally {
      client.disconnect();
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const addr = await resolveAddress(this.cfg, signal);
    const where = `${addr.host}:${addr.port}`;
    const client = await connectRedis(this.cfg, addr);
    let info: Record<string, string>;
    let layout: AofLayout;
    let guard: RewriteGuard;
    let cap: Capture;
    try {
      info = parseInfo(String(await client.info()));
      this.refuseUnsupported(info, addr);
      layout = await locateAof(client, this.cfg, addr, !releaseAtLeast(info.redis_version, 7));
      await readAofManifest(layout, this.cfg.name);
      const waitMs = parseDuration(this.cfg.aof?.rewriteWait ?? '10m') ?? 600_000;
      guard = await RewriteGuard.engage(client, () => connectRedis(this.cfg, addr), where, waitMs, signal);
      try {
        cap = await captureAof(client, layout, where, this.cfg.name);
      } catch (err) {
        await guard.release().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      throw this.explain(err, addr);
    } finally {
      client.disconnect();
    }

    const result: AofCopyResult = { incrCommands: 0, baseClasses: {} };
    let done = false;
    async function* produce(): AsyncGenerator<Buffer> {
      let failure: unknown;
      try {
        yield* tarStream(
          cap.files.map((f) => ({
            name: `${layout.dirName}/${f.name}`,
            size: f.size,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            mtime: f.mtime,
            content: () => aofFileContent(f, layout, result),
          })),
          // Every byte is read: rewrites may run again before the consumer has even seen the end.
          { beforeEnd: () => guard.release() },
        );
        done = true;
      } catch (err) {
        failure = err;
      } finally {
        await Promise.all(cap.files.map((f) => f.fh?.close().catch(() => undefined)));
        const released = await guard.release().then(() => null, (e: unknown) => e as Error);
        if (failure !== undefined && released !== null) {
          const f = failure as Error;
          const kind = f instanceof TykdrError ? f.kind : 'sourceUnreachable';
          failure = new TykdrError(kind, `${f.message}; also, ${released.message}`, { fix: (released as TykdrError).fix, cause: f });
        } else if (failure === undefined && released !== null) {
          failure = released;
        }
      }
      if (failure !== undefined) throw failure;
    }

    const stream = Readable.from(produce(), { objectMode: false, highWaterMark: 1 << 20 });
    return {
      stream,
      format: 'aof',
      consistentAt: cap.at,
      finish: async () => {
        if (!done) throw integrityError('the AOF copy did not complete');
        const keyspace = Object.fromEntries([...cap.keyspace].map(([db, c]) => [String(db), c]));
        const base = result.base;
        return {
          source: {
            address: where,
            resolved_via: addr.via,
            redis_version: info.redis_version,
            // The product and its own release ("Valkey 8.1.8"; Valkey's redis_version is 7.2.4).
            server: serverName(parseServerInfo(info)),
            redis_mode: info.redis_mode,
            role: info.role,
            transfer: 'aof-files',
            aof: {
              redis_dir: layout.redisDir,
              data_dir: layout.dataDir,
              appenddirname: layout.dirName,
              // single-file: Redis < 7's one AOF file, archived as the base of a synthesized folder.
              layout: layout.singleFile ? 'single-file' : 'multi-part',
              appendfilename: layout.appendfilename,
              base_seq: cap.manifest.base?.seq ?? null,
              incr_seqs: cap.manifest.incr.map((e) => e.seq),
              files: cap.files.map((f) => ({ name: f.name, kind: f.kind, bytes: f.size })),
              base_format: base ? 'rdb' : cap.manifest.base ? 'aof' : null,
              base_keys: base?.totalKeys,
              base_key_classes: base ? result.baseClasses : undefined,
              incr_commands: result.incrCommands,
              cut_tail_bytes: cap.cutTailBytes,
              aof_current_size_before: cap.sizeBefore,
              aof_current_size_after: cap.sizeAfter,
            },
            rewrite_guard: guard.facts,
            ...(base ? { rdb_version: base.rdbVersion, rdb_checksum: base.checksum, rdb_redis_ver: base.aux['redis-ver'] } : {}),
            tyk_db: this.cfg.db,
            databases_setting: layout.databasesSetting,
            // INFO keyspace when the files were opened (Redis's count, which includes keys expired but not yet evicted).
            databases: keyspace,
            total_keys: [...cap.keyspace.values()].reduce((a, c) => a + c.keys, 0),
          },
        };
      },
    };
  }

  private refuseUnsupported(info: Record<string, string>, addr: RedisAddress): void {
    const where = `${addr.host}:${addr.port}`;
    const mode = `components.${this.cfg.name}.mode`;
    if (info.cluster_enabled === '1') {
      throw badInput(`Redis at ${where} runs in cluster mode: its AOF holds only this node's slots`, `back up a Redis Cluster with ${mode}: keys (it scans every master)`);
    }
    if (info.aof_enabled !== '1') throw badInput(`AOF is disabled on ${where}; use mode: rdb`, `set ${mode}: rdb (or enable appendonly on that Redis)`);
    if (info.aof_last_write_status !== undefined && info.aof_last_write_status !== 'ok') {
      throw sourceUnreachable(`Redis at ${where} is failing to write its AOF (aof_last_write_status:${info.aof_last_write_status}): the files on disk are not whole`, 'fix the Redis host (disk full? permissions?) and check the Redis log');
    }
  }

  private explain(err: unknown, addr: RedisAddress): Error {
    if (err instanceof TykdrError) return err;
    const msg = String((err as Error)?.message ?? err);
    if (/NOPERM/i.test(msg)) {
      return sourceUnreachable(
        `components.${this.cfg.name}: Redis at ${addr.host}:${addr.port}: user "${this.cfg.username ?? 'default'}" lacks a permission mode aof needs (${msg.split('\n')[0]})`,
        `grant the ACL user ${ACL} (it reads where the AOF is and holds off rewrites during the copy)`,
        err,
      );
    }
    if (/unknown command .?config/i.test(msg)) {
      return sourceUnreachable(
        `components.${this.cfg.name}: Redis at ${addr.host}:${addr.port} refuses CONFIG (${msg.split('\n')[0]}): mode aof needs it to hold off AOF rewrites during the copy`,
        'managed Redis services refuse CONFIG: use mode: keys there',
        err,
      );
    }
    return explainRedisError(err, this.cfg, addr);
  }
}
