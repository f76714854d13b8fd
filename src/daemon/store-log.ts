import { openStore } from '../backends/stores/registry.js';
import type { Store as StoreConfig } from '../core/config/load.js';
import { describeStoreEvent, type Store } from '../core/interfaces/store.js';
import type { Logger } from './log.js';

/** The store of a config, with its retries and stalls logged (warn) as they happen. */
export function openLoggingStore(cfg: StoreConfig, log: Logger): Store {
  const store: Store = openStore(cfg, {
    onEvent: (e) => {
      const fields = { store: store.location, event: `store_${e.type}`, operation: e.operation };
      if (e.type === 'resumed') log.info(describeStoreEvent(store.location, e), { ...fields, stalled_ms: e.stalledMs });
      else if (e.type === 'stalled') log.warn(describeStoreEvent(store.location, e), { ...fields, idle_ms: e.idleMs, limit_ms: e.limitMs });
      else log.warn(describeStoreEvent(store.location, e), { ...fields, attempt: e.attempt, max_attempts: e.maxAttempts, reason: e.reason, delay_ms: e.delayMs });
    },
  });
  return store;
}
