import type { Component } from '../core/config/load.js';
import type { Source } from '../core/interfaces/source.js';
import type { Target } from '../core/interfaces/target.js';
import { redisSources } from './redis/source/sources.js';

type Of<K extends Component['kind']> = Extract<Component, { kind: K }>;

interface Kind<K extends Component['kind']> {
  /** The backup side: one Source per artifact of the component. */
  sources(cfg: Of<K>): Source[] | Promise<Source[]>;
  /** The restore side, imported on first use. */
  target(): Promise<Target<Of<K>>>;
}

/**
 * Component kinds plug in here, keyed by kind; each kind's code lives in its own folder
 * (src/backends/<kind>/source, .../target) and its config section in src/core/config/components/.
 * A component yields one or more sources (one artifact each): e.g. PostgreSQL with `globals: true` also
 * yields "<name>-globals". Sources other than Redis's and every target are imported on first use: their
 * libraries (pg, mongodb, tar) cost start-up time that a Redis-only backup should not pay.
 */
const kinds: { [K in Component['kind']]: Kind<K> } = {
  redis: { sources: redisSources, target: async () => (await import('./redis/target/redis-target.js')).redisTarget },
  files: { sources: async (cfg) => [new (await import('./files/source/files-source.js')).FilesSource(cfg)], target: async () => (await import('./files/target/files-target.js')).filesTarget },
  postgres: {
    sources: async (cfg) => (await import('./postgres/source/sources.js')).postgresSources(cfg),
    target: async () => (await import('./postgres/target/postgres-target.js')).postgresTarget,
  },
  mongo: {
    sources: async (cfg) => (await import('./mongo/source/sources.js')).mongoSources(cfg),
    target: async () => (await import('./mongo/target/mongo-target.js')).mongoTarget,
  },
};

export const COMPONENT_KINDS = Object.keys(kinds) as Array<Component['kind']>;

export async function openSources(cfg: Component): Promise<Source[]> {
  return (kinds[cfg.kind] as Kind<typeof cfg.kind>).sources(cfg as never);
}

export async function targetOf<K extends Component['kind']>(kind: K): Promise<Target<Of<K>>> {
  return (kinds[kind] as unknown as Kind<K>).target();
}

/** The target restoring a manifest component kind; loads the targets until one claims it. */
export async function targetForArtifact(artifactKind: string): Promise<Target | undefined> {
  for (const k of COMPONENT_KINDS) {
    const t = (await targetOf(k)) as Target;
    if (t.artifactKinds.includes(artifactKind)) return t;
  }
  return undefined;
}
