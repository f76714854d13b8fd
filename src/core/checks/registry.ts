import type { PlanComponent } from '../plan/roles.js';

/**
 * Every check a plan can ask for, defined once. `role` is the plan component whose steps may list it;
 * `by` says who runs it: the Target of that kind (after restoring its data) or the service checks
 * (HTTP probes against the gateway and dashboard). The plan schema, the targets and the service checks
 * all read this table; test/unit/checks-registry.test.ts ties them together.
 */
export const CHECK_REGISTRY = {
  'redis-ping': { role: 'redis', by: 'redis', about: 'the target answers PING (every master of a cluster)' },
  'redis-key-counts': { role: 'redis', by: 'redis', about: 'keys per database and per Tyk key class equal the snapshot' },
  'redis-sample': { role: 'redis', by: 'redis', about: 'a random sample of keys holds the snapshot values' },
  'redis-ttl': { role: 'redis', by: 'redis', about: 'the sampled keys kept their expiry times' },
  'redis-replicas': { role: 'redis', by: 'redis', about: 'every replica is connected and caught up' },
  'database-counts': { role: 'database', by: 'database', about: 'rows or documents per table or collection equal the snapshot' },
  'database-indexes': { role: 'database', by: 'database', about: 'every index of the snapshot exists' },
  'files-restored': { role: ['gateway', 'dashboard'], by: 'files', about: 'every file of the tarball is in place with its size, mode and mtime' },
  'gateway-ready': { role: 'gateway', by: 'service', about: 'the gateway answers /ready' },
  'gateway-hello': { role: 'gateway', by: 'service', about: 'the gateway /hello reports Redis as up' },
  'gateway-key-probe': { role: 'gateway', by: 'service', about: 'the canary key is accepted by the gateway' },
  'gateway-loaded': { role: 'gateway', by: 'service', about: 'a drill gateway loaded as many APIs and policies as the snapshot holds (/tyk/apis, /tyk/policies)' },
  upstream: { role: 'gateway', by: 'service', about: 'the configured uptime tests pass through the gateway' },
  'dashboard-health': { role: 'dashboard', by: 'service', about: 'the dashboard health endpoint answers' },
} as const satisfies Record<string, { role: PlanComponent | readonly PlanComponent[]; by: string; about: string }>;

export type CheckName = keyof typeof CHECK_REGISTRY;
export const CHECK_NAMES = Object.keys(CHECK_REGISTRY) as CheckName[];

type Owner = (typeof CHECK_REGISTRY)[CheckName]['by'];
/** The names of the checks that `B` runs. */
export type ChecksBy<B extends Owner> = { [K in CheckName]: (typeof CHECK_REGISTRY)[K]['by'] extends B ? K : never }[CheckName];

/** The checks a target kind (or 'service') runs, in registry order. */
export function checksBy<B extends Owner>(by: B): Array<ChecksBy<B>> {
  return CHECK_NAMES.filter((n) => CHECK_REGISTRY[n].by === by) as Array<ChecksBy<B>>;
}

/** The checks a plan step of this role may list. */
export function checksOfRole(role: PlanComponent): CheckName[] {
  return CHECK_NAMES.filter((n) => {
    const r: string | readonly string[] = CHECK_REGISTRY[n].role;
    return typeof r === 'string' ? r === role : r.includes(role);
  });
}

export function isCheckName(name: string): name is CheckName {
  return Object.hasOwn(CHECK_REGISTRY, name);
}
