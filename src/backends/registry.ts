import type { Component } from '../core/config/load.js';
import { FilesSource } from './files/source/files-source.js';
import { redisSources } from './redis/source/sources.js';
import type { Source } from '../core/interfaces/source.js';

type Factory<K extends Component['kind']> = (cfg: Extract<Component, { kind: K }>) => Source[] | Promise<Source[]>;

/**
 * Sources plug in by kind; the config schema validates each kind's section. A component yields one or
 * more sources (one artifact each): e.g. PostgreSQL with `globals: true` also yields "<name>-globals".
 * The database sources are imported on first use: their drivers (pg, mongodb) cost start-up time that a
 * Redis-only backup should not pay.
 */
const factories: { [K in Component['kind']]: Factory<K> } = {
  redis: redisSources,
  files: (cfg) => [new FilesSource(cfg)],
  postgres: async (cfg) => (await import('./postgres/source/sources.js')).postgresSources(cfg),
  mongo: async (cfg) => (await import('./mongo/source/sources.js')).mongoSources(cfg),
};

export async function openSources(cfg: Component): Promise<Source[]> {
  return (factories[cfg.kind] as Factory<typeof cfg.kind>)(cfg as never);
}
