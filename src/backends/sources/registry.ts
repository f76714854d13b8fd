import type { Component } from '../../core/config/load.js';
import { FilesSource } from './files/files-source.js';
import { RedisSource } from './redis/redis-source.js';
import type { Source } from './source.js';

type Factory<K extends Component['kind']> = (cfg: Extract<Component, { kind: K }>) => Source;

/** Sources plug in by kind; the config schema validates each kind's section. */
const factories: { [K in Component['kind']]: Factory<K> } = {
  redis: (cfg) => new RedisSource(cfg),
  files: (cfg) => new FilesSource(cfg),
};

export function openSource(cfg: Component): Source {
  return (factories[cfg.kind] as Factory<typeof cfg.kind>)(cfg as never);
}
