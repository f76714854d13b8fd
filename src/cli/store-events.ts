import { openStore } from '../backends/stores/registry.js';
import type { Store as StoreConfig } from '../core/config/load.js';
import type { Backends } from '../core/interfaces/backends.js';
import { describeStoreEvent, type Store } from '../core/interfaces/store.js';
import { backends } from '../wiring.js';

/** The store of a config, with its retries and stalls written as progress lines (stderr: `note`). */
export function openReportingStore(cfg: StoreConfig, write: (line: string) => void): Store {
  const store: Store = openStore(cfg, { onEvent: (e) => write(`  ${describeStoreEvent(store.location, e)}`) });
  return store;
}

/** The real backends, with every store they open reporting its retries and stalls through `write`. */
export function reportingBackends(write: (line: string) => void): Backends {
  return { ...backends, openStore: (cfg) => openReportingStore(cfg, write) };
}
