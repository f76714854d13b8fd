import type { Backends } from './core/interfaces/backends.js';
import { openSources, targetForArtifact, targetOf } from './backends/registry.js';
import { openStore } from './backends/stores/registry.js';

/** The real backends and checks, handed to the engine by the commands and the daemon. */
export const backends: Backends = {
  openStore,
  openSources,
  target: targetOf,
  targetForArtifact,
  // Loaded when a plan runs one: a backup or a restore without service checks does not load node:http and node:https.
  serviceCheck: async (name, config, signal) => (await import('./verify/service-checks.js')).serviceCheck(name, config, signal),
};
