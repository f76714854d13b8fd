import type { RedisComponent } from '../../../core/config/load.js';
import { sourceUnreachable } from '../../../core/errors.js';
import { connectTimeoutMs, tlsOptions, type RedisAddress } from './connection.js';

/**
 * Resolves the address to back up from. Without Sentinel: the configured host/port. With Sentinel:
 * asks each sentinel in turn for the master (SENTINEL GET-MASTER-ADDR-BY-NAME), or, with fromReplica,
 * for the healthiest replica (link up, not down, furthest replication offset), falling back to the
 * master when no replica is healthy.
 */
export async function resolveAddress(c: RedisComponent, signal?: AbortSignal): Promise<RedisAddress> {
  const s = c.sentinel;
  if (!s) return { host: c.host, port: c.port, via: 'config' };
  const failures: string[] = [];
  for (const node of s.sentinels) {
    signal?.throwIfAborted();
    const client = await sentinelClient(c, node);
    try {
      await client.connect();
      const master = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', s.masterName)) as [string, string] | null;
      if (!master) {
        failures.push(`${node.host}:${node.port} does not monitor "${s.masterName}"`);
        continue;
      }
      if (s.fromReplica) {
        const replicas = (await client.call('SENTINEL', 'REPLICAS', s.masterName)) as string[][];
        const healthy = replicas
          .map(toRecord)
          .filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? '') && r['master-link-status'] === 'ok')
          .sort((a, b) => Number(b['slave-repl-offset'] ?? 0) - Number(a['slave-repl-offset'] ?? 0));
        const best = healthy[0];
        if (best?.ip && best.port) return { host: best.ip, port: Number(best.port), via: `sentinel replica of ${s.masterName}` };
      }
      return { host: master[0], port: Number(master[1]), via: `sentinel master ${s.masterName}` };
    } catch (err) {
      failures.push(`${node.host}:${node.port}: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      client.disconnect();
    }
  }
  throw sourceUnreachable(
    `components.${c.name}: no sentinel could name the master "${s.masterName}" (${failures.join('; ')})`,
    `check components.${c.name}.sentinel.sentinels and masterName`,
  );
}

function toRecord(flat: string[]): Record<string, string> {
  const r: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) r[flat[i]!] = flat[i + 1]!;
  return r;
}

/** A client for one sentinel of `c` (not connected yet; the caller connects and disconnects it). */
async function sentinelClient(c: RedisComponent, node: { host: string; port: number }) {
  const s = c.sentinel!;
  const { Redis } = await import('./ioredis-client.js');
  const client = new Redis({
    host: node.host,
    port: node.port,
    username: s.username,
    password: s.password?.reveal(),
    tls: tlsOptions(c),
    lazyConnect: true,
    connectTimeout: connectTimeoutMs(c),
    commandTimeout: connectTimeoutMs(c),
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  return client;
}

/** What the sentinels of `c` say about its master right now (sentinelView). */
export interface SentinelView {
  /** The master as the first sentinel that answered names it ("ip:port"), as resolveAddress would. */
  master: string;
  /** Replicas any sentinel that answered lists as healthy (not s_down, o_down or disconnected), as "ip:port". */
  replicas: string[];
  /** Why a failover looks under way (a sentinel flags the master failover_in_progress, or a replica promoted), or null. */
  failover: string | null;
  /** The largest down-after-milliseconds of the master among the sentinels that answered. */
  downAfterMs: number;
  answered: number;
}

/**
 * Asks every sentinel (not the first that answers: only the one running a failover flags it) for the master's
 * flags and its replicas. A sentinel that does not answer is left out; none answering is an error.
 */
export async function sentinelView(c: RedisComponent, signal?: AbortSignal): Promise<SentinelView> {
  const s = c.sentinel!;
  const replicas = new Set<string>();
  const failovers: string[] = [];
  const failures: string[] = [];
  let downAfterMs = 0;
  let answered = 0;
  let masterAddr = '';
  for (const node of s.sentinels) {
    signal?.throwIfAborted();
    const client = await sentinelClient(c, node);
    try {
      await client.connect();
      const master = toRecord((await client.call('SENTINEL', 'MASTER', s.masterName)) as string[]);
      const list = ((await client.call('SENTINEL', 'REPLICAS', s.masterName)) as string[][]).map(toRecord);
      answered++;
      if (!masterAddr) masterAddr = `${master.ip}:${master.port}`;
      downAfterMs = Math.max(downAfterMs, Number(master['down-after-milliseconds'] ?? 0));
      if (/failover_in_progress/.test(master.flags ?? '')) failovers.push(`sentinel ${node.host}:${node.port} is failing over ${s.masterName}`);
      for (const r of list) {
        const flags = r.flags ?? '';
        if (/promoted/.test(flags)) failovers.push(`sentinel ${node.host}:${node.port} promoted ${r.ip}:${r.port}`);
        if (!/s_down|o_down|disconnected/.test(flags) && r.ip && r.port) replicas.add(`${r.ip}:${r.port}`);
      }
    } catch (err) {
      failures.push(`${node.host}:${node.port}: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      client.disconnect();
    }
  }
  if (answered === 0) {
    throw sourceUnreachable(`components.${c.name}: no sentinel answered about "${s.masterName}" (${failures.join('; ')})`, `check components.${c.name}.sentinel.sentinels`);
  }
  return { master: masterAddr, replicas: [...replicas].sort(), failover: failovers[0] ?? null, downAfterMs, answered };
}
