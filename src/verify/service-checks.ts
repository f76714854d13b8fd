import type { CheckName } from '../core/checks/registry.js';
import type { Config } from '../core/config/load.js';
import type { ServiceCheck } from '../core/interfaces/target.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkDashboardHealth, checkGatewayHello, checkGatewayKeyProbe, checkGatewayLoaded, checkGatewayReady, checkUpstreams } from './http-checks.js';

const skipped = (name: string, detail: string): CheckResult => ({ name, status: 'skipped', detail, finishedAt: new Date().toISOString(), durationMs: 0 });

type Runner = (config: Config, signal: AbortSignal) => Promise<CheckResult>;
const noGateway = (name: string) => skipped(name, 'no gateway section in tykdr.yaml');

/** Every check the registry assigns to 'service', by name; test/unit/checks-registry.test.ts keeps them equal. */
export const SERVICE_CHECKS: Record<string, Runner> = {
  'gateway-ready': async (c, s) => (c.gateway ? checkGatewayReady(c.gateway, s) : noGateway('gateway-ready')),
  'gateway-hello': async (c, s) => (c.gateway ? checkGatewayHello(c.gateway, s) : noGateway('gateway-hello')),
  'gateway-key-probe': async (c, s) => (c.gateway ? checkGatewayKeyProbe(c.gateway, s) : noGateway('gateway-key-probe')),
  'gateway-loaded': async (c, s) => (c.gateway ? checkGatewayLoaded(c.gateway, s) : noGateway('gateway-loaded')),
  upstream: async (c, s) => (c.gateway ? checkUpstreams(c.gateway, s) : noGateway('upstream')),
  'dashboard-health': async (c, s) => (c.dashboard ? checkDashboardHealth(c.dashboard, s) : skipped('dashboard-health', 'no dashboard section in tykdr.yaml')),
};

/** Runs one service check against the configured gateway or dashboard. */
export const serviceCheck: ServiceCheck = async (name: CheckName, config: Config, signal: AbortSignal) => {
  const run = SERVICE_CHECKS[name];
  return run ? run(config, signal) : skipped(name, 'not a service check');
};
