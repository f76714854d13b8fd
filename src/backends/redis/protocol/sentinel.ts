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
  const { Redis } = await import('./ioredis-client.js');
  for (const node of s.sentinels) {
    signal?.throwIfAborted();
    const client = new Redis({
      host: node.host,
      port: node.port,
      username: s.username,
      password: s.password?.reveal(),
      tls: tlsOptions(c),
      lazyConnect: true,
      connectTimeout: connectTimeoutMs(c),
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
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
