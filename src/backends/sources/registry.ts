import type { Component } from '../../core/config/load.js';
import { FilesSource } from './files/files-source.js';
import { mongoSources } from './mongo/index.js';
import { postgresSources } from './postgres/index.js';
import { redisSources } from './redis/index.js';
import type { Source } from './source.js';

type Factory<K extends Component['kind']> = (cfg: Extract<Component, { kind: K }>) => Source[];

/**
 * Sources plug in by kind; the config schema validates each kind's section. A component yields one or
 * more sources (one artifact each): e.g. PostgreSQL with `globals: true` also yields "<name>-globals".
 */
const factories: { [K in Component['kind']]: Factory<K> } = {
  redis: redisSources,
  files: (cfg) => [new FilesSource(cfg)],
  postgres: postgresSources,
  mongo: mongoSources,
};

export function openSources(cfg: Component): Source[] {
  return (factories[cfg.kind] as Factory<typeof cfg.kind>)(cfg as never);
}
