import type { Backends } from './core/interfaces/backends.js';
import { openSources, targetForArtifact, targetOf } from './backends/registry.js';
import { openStore } from './backends/stores/registry.js';
import { serviceCheck } from './verify/service-checks.js';

/** The real backends and checks, handed to the engine by the commands and the daemon. */
export const backends: Backends = { openStore, openSources, target: targetOf, targetForArtifact, serviceCheck };
