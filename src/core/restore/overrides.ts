import type { Component, Config } from '../config/load.js';
import { badInput } from '../errors.js';
import type { Backends } from '../interfaces/backends.js';
import type { Target } from '../interfaces/target.js';

export interface TargetOverrides {
  /** component name -> host:port, from --target NAME=HOST:PORT. */
  targets?: Record<string, { host: string; port: number }>;
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
export async function withOverrides(config: Config, o: TargetOverrides, backends: Backends): Promise<Config> {
  const components = { ...config.components };
  for (const [name, addr] of Object.entries(o.targets ?? {})) {
    const c = components[name];
    const target = c ? ((await backends.target(c.kind)) as Target) : undefined;
    if (!c || !target?.retarget) {
      const movable: string[] = [];
      for (const x of Object.values(config.components)) if (((await backends.target(x.kind)) as Target).retarget) movable.push(x.name);
      throw badInput(
        `--target ${name}=...: "${name}" is not a component of ${config.file} whose restore address can be given on the command line`,
        `use one of: ${movable.join(', ') || '(none configured)'}`,
      );
    }
    components[name] = target.retarget(c as Component, addr);
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
