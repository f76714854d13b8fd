import type { RedisComponent } from '../../../core/config/load.js';
import type { Target } from '../../../core/interfaces/target.js';
import { REDIS_CHECKS } from './redis-checks.js';
import { inspectRedisTarget, restoreModeStartsTarget, restoreRedis } from './restore-redis.js';
import { startScratchRedis } from './scratch-redis.js';

/** Redis (and Redis-compatible servers): live copy, rdb-file or aof-file modes, keys mode for managed Redis and Cluster. */
export const redisTarget: Target<RedisComponent> = {
  kind: 'redis',
  artifactKinds: ['redis'],
  checks: REDIS_CHECKS,
  role: () => 'redis',
  roleOf: () => 'redis',

  async assess({ name, component: c, signal }) {
    try {
      const t = await inspectRedisTarget(c, signal);
      const partial = t.partial
        ? `PARTIAL: restore ${t.partial.restore_id} of snapshot ${t.partial.snapshot} (started ${t.partial.started_at}) did not finish writing here`
        : undefined;
      return [
        {
          component: name,
          target: `redis ${t.address} (${t.serverName}, ${c.restore.mode})`,
          liveData: t.keys > 0 ? `${t.keys} keys${partial ? `, ${partial}` : ''}` : null,
          ...(partial ? { warning: `${name}: redis ${t.address} is ${partial}` } : {}),
        },
      ];
    } catch (err) {
      if (!restoreModeStartsTarget(c)) throw err;
      return [
        {
          component: name,
          target: `redis (${c.restore.mode} into ${c.restore.dataDir ?? '?'})`,
          liveData: null,
          warning: `${name}: target Redis not reachable before the restore (${(err as Error).message}); its version could not be checked`,
        },
      ];
    }
  },

  async restore(i) {
    i.note(`  restoring ${i.name} (redis)`);
    let shown = 0;
    return restoreRedis({
      component: i.component,
      manifest: i.entry,
      rdbFile: i.stagedFile,
      workDir: i.workDir,
      checks: [...i.checks],
      signal: i.signal,
      marker: { restore_id: i.restoreId, snapshot: i.snapshotId },
      progress: (e) => {
        // Print each time another 100,000 keys are crossed (SCAN pages are uneven).
        if (e.keys !== undefined && Math.floor(e.keys / 100_000) > shown) {
          shown = Math.floor(e.keys / 100_000);
          i.note(`    ${i.name}: ${e.phase} ${e.keys}${e.totalKeys ? ` of ${e.totalKeys}` : ''} keys`);
        }
      },
    });
  },

  async scratch({ component: c, config, dir, signal }) {
    const s = await startScratchRedis(config.drill.redisServer, dir, signal);
    return {
      component: { ...c, sentinel: undefined, restore: { ...c.restore, mode: 'live', target: { host: '127.0.0.1', port: s.port, password: s.password } } },
      stop: async () => {
        await s.stop();
        return [];
      },
    };
  },

  retarget: (c, addr) => ({ ...c, restore: { ...c.restore, target: { ...c.restore.target, host: addr.host, port: addr.port } } }),
};
