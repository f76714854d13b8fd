import type { RedisComponent } from '../../../core/config/load.js';
import type { Source } from '../../../core/interfaces/source.js';

/**
 * The Redis source for a component's mode, its module imported on first use (the AOF source brings tar,
 * the key-level source the cluster code: start-up that an RDB backup should not pay):
 *   rdb   an RDB streamed over the replication protocol (SYNC), as `redis-cli --rdb` does
 *   aof   the multi-part AOF folder, copied where Redis's data dir is readable
 *   keys  SCAN + DUMP, for managed Redis (no SYNC, no CONFIG) and Redis Cluster
 */
export async function redisSources(cfg: RedisComponent): Promise<Source[]> {
  switch (cfg.mode) {
    case 'aof':
      return [new (await import('./aof-source.js')).AofSource(cfg)];
    case 'keys':
      return [new (await import('./keys-source.js')).KeysSource(cfg)];
    default:
      return [new (await import('./redis-source.js')).RedisSource(cfg)];
  }
}
