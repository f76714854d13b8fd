import type { Store as StoreConfig } from '../../core/config/load.js';
import { LocalStore } from './local-store.js';
import { S3Store } from './s3-store.js';
import type { Store } from './store.js';

type Factory<K extends StoreConfig['kind']> = (cfg: Extract<StoreConfig, { kind: K }>) => Store;

/** Stores plug in by kind; the config schema validates each kind's section. */
const factories: { [K in StoreConfig['kind']]: Factory<K> } = {
  local: (cfg) => new LocalStore(cfg.path),
  s3: (cfg) => new S3Store(cfg),
};

export function openStore(cfg: StoreConfig): Store {
  return (factories[cfg.kind] as Factory<typeof cfg.kind>)(cfg as never);
}
