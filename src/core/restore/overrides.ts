import type { Config, RedisComponent } from '../config/load.js';
import { badInput } from '../errors.js';

export interface TargetOverrides {
  /** component name -> host:port, from --target NAME=HOST:PORT. */
  redis?: Record<string, { host: string; port: number }>;
  gatewayUrl?: string;
  dashboardUrl?: string;
}

/** Parses one --target value: NAME=HOST:PORT. */
export function parseTargetFlag(value: string): [string, { host: string; port: number }] {
  const m = /^([a-z][a-z0-9-]*)=(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw badInput(`--target "${value}" is not NAME=HOST:PORT`, 'e.g. --target redis=10.1.0.7:6379 (the component name from tykdr.yaml)');
  }
  return [m[1]!, { host: m[2]!, port: Number(m[3]) }];
}

/** A copy of the config whose restore targets point elsewhere (a standby region, a scratch host). */
export function withOverrides(config: Config, o: TargetOverrides): Config {
  const components = { ...config.components };
  for (const [name, addr] of Object.entries(o.redis ?? {})) {
    const c = components[name];
    if (!c || c.kind !== 'redis') {
      const redis = Object.values(config.components).filter((x) => x.kind === 'redis').map((x) => x.name);
      throw badInput(`--target ${name}=...: "${name}" is not a redis component in ${config.file}`, `use one of: ${redis.join(', ') || '(none configured)'}`);
    }
    const r = c as RedisComponent;
    components[name] = { ...r, restore: { ...r.restore, target: { ...r.restore.target, host: addr.host, port: addr.port } } };
  }
  return {
    ...config,
    components,
    gateway: o.gatewayUrl ? { ...(config.gateway ?? defaultGateway()), url: o.gatewayUrl } : config.gateway,
    dashboard: o.dashboardUrl ? { ...(config.dashboard ?? { healthPath: '/api/health', timeout: '2m', url: '' }), url: o.dashboardUrl } : config.dashboard,
  };
}

function defaultGateway(): NonNullable<Config['gateway']> {
  return { url: '', readyPath: '/ready', helloPath: '/hello', timeout: '2m' };
}
