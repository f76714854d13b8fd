import type { RedisComponent } from '../../../core/config/load.js';
import type { Source } from '../../../core/interfaces/source.js';
import { AofSource } from './aof-source.js';
import { KeysSource } from './keys-source.js';
import { RedisSource } from './redis-source.js';

/**
 * The Redis source for a component's mode:
 *   rdb   an RDB streamed over the replication protocol (SYNC), as `redis-cli --rdb` does
 *   aof   the multi-part AOF folder, copied where Redis's data dir is readable
 *   keys  SCAN + DUMP, for managed Redis (no SYNC, no CONFIG) and Redis Cluster
 */
export function redisSources(cfg: RedisComponent): Source[] {
  switch (cfg.mode) {
    case 'aof':
      return [new AofSource(cfg)];
    case 'keys':
      return [new KeysSource(cfg)];
    default:
      return [new RedisSource(cfg)];
  }
}
