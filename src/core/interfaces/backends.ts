import type { Component, Store as StoreConfig } from '../config/load.js';
import type { Source } from './source.js';
import type { Store } from './store.js';
import type { ServiceCheck, Target } from './target.js';

/**
 * What the engine needs from the outside world, handed in by the caller (src/wiring.ts for the CLI and
 * the daemon; a test may hand in its own). The engine (src/core) never imports an implementation.
 */
export interface Backends {
  openStore(cfg: StoreConfig): Store;
  /** The sources of one configured component (one per artifact). */
  openSources(component: Component): Promise<Source[]>;
  /** The restore side of a component kind (imported on first use). */
  target<K extends Component['kind']>(kind: K): Promise<Target<Extract<Component, { kind: K }>>>;
  /** The target that restores a manifest component kind (postgres-globals: the postgres target), if any. */
  targetForArtifact(artifactKind: string): Promise<Target | undefined>;
  /** The HTTP checks against the configured gateway and dashboard. */
  serviceCheck: ServiceCheck;
}
