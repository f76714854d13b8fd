import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import { badInput } from '../errors.js';
import { Secret } from '../secret.js';
import { requireDuration } from '../duration.js';
import { parseYaml, schemaError } from '../yaml-doc.js';
import { configSchema, DEFAULT_TIERS, TIER_NAMES, type RawConfig, type S3StoreConfig, type TierName, type GatewayConfig, type DashboardConfig } from './schema.js';
import { resolveComponent, type Component } from './components/index.js';

export type { Component, FilesComponent, MongoComponent, PostgresComponent, RedisComponent } from './components/index.js';
export type { RedisRestoreTarget } from './components/redis.js';
export type S3Store = Omit<S3StoreConfig, 'secretAccessKey' | 'sessionToken'> & {
  secretAccessKey?: Secret;
  sessionToken?: Secret;
};
export type Store = Exclude<RawConfig['store'], S3StoreConfig> | S3Store;

export interface Objective {
  rtoMs: number;
  rpoMs: number;
}

export type Gateway = Omit<GatewayConfig, 'keyProbe'> & {
  keyProbe?: Omit<NonNullable<GatewayConfig['keyProbe']>, 'key'> & { key: Secret };
};

export interface Config {
  /** Absolute path of the file this came from, or "(defaults)". */
  file: string;
  store: Store;
  encryption: RawConfig['encryption'];
  compression: RawConfig['compression'];
  tiers: Record<TierName, Objective>;
  parallelism: number;
  components: Record<string, Component>;
  gateway?: Gateway;
  dashboard?: DashboardConfig;
  restore: { stagingDir?: string; reportDir: string };
  schedule: RawConfig['schedule'];
  retention: RawConfig['retention'];
  notifications: Omit<RawConfig['notifications'], 'webhooks'> & {
    webhooks: Array<Omit<RawConfig['notifications']['webhooks'][number], 'headers'> & { headers: Record<string, Secret> }>;
  };
  health: Omit<RawConfig['health'], 'token'> & { token?: Secret };
  leader: Omit<RawConfig['leader'], 'password'> & { password?: Secret };
  drill: RawConfig['drill'];
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Reads, interpolates and validates a tykdr.yaml. Every error names the file, the path (and line),
 * the bad value where it is not secret, and the fix.
 */
/**
 * What the caller will use. An unset \${VAR} outside that part reads as empty instead of failing, so
 * `tykdr snapshots` works with only the store credentials and `tykdr backup` without the restore-side
 * secrets (restore targets, the gateway's canary key).
 */
export type ConfigPurpose = 'store' | 'backup' | 'all';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  purpose?: ConfigPurpose;
}

const NEEDED: Record<ConfigPurpose, (p: PropertyKey[]) => boolean> = {
  store: (p) => p[0] === 'store',
  backup: (p) =>
    !['gateway', 'dashboard', 'restore', 'health', 'notifications', 'leader', 'drill'].includes(String(p[0])) &&
    !(p[0] === 'components' && p[2] === 'restore'),
  all: () => true,
};

export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<Config> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(
      `cannot read config file ${abs} (${code ?? String(err)})`,
      code === 'ENOENT' ? 'run `tykdr init` to write one, or pass --config PATH' : 'check the path and its permissions',
    );
  }
  return parseConfig(text, abs, opts.env ?? process.env, opts.purpose);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, purpose: ConfigPurpose = 'all'): Config {
  const { doc, lineOf } = parseYaml(text, file);
  const required = NEEDED[purpose];
  interpolate(doc.contents, [], env, (p) => `${file}${lineOf(p)}`, required);
  const data: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw schemaError(parsed.error, data, file, lineOf, {
      secretKeys: SECRET_KEYS,
      fix: 'see `tykdr init` for a commented example, or schema/tykdr.schema.json',
    });
  }
  return resolve(parsed.data, file);
}

function interpolate(
  node: unknown,
  p: PropertyKey[],
  env: NodeJS.ProcessEnv,
  where: (p: PropertyKey[]) => string,
  required: (p: PropertyKey[]) => boolean,
): void {
  if (isScalar(node) && typeof node.value === 'string') {
    node.value = node.value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      if (!required(p)) return '';
      throw badInput(
        `${where(p)}: ${p.join('.')} refers to environment variable \${${name}}, which is not set`,
        `export ${name}=... before running tykdr, or write \${${name}:-default}`,
      );
    });
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      interpolate(pair.value, [...p, key], env, where, required);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => interpolate(item, [...p, i], env, where, required));
  }
}

const SECRET_KEYS = new Set(['password', 'secretAccessKey', 'sessionToken', 'key', 'uri']);

function resolve(raw: RawConfig, file: string): Config {
  const tiers = {} as Record<TierName, Objective>;
  for (const t of TIER_NAMES) {
    const o = raw.tiers[t] ?? DEFAULT_TIERS[t];
    tiers[t] = { rtoMs: requireDuration(o.rto, `tiers.${t}.rto`), rpoMs: requireDuration(o.rpo, `tiers.${t}.rpo`) };
  }
  const rel = (p: string | undefined) => (p === undefined ? undefined : path.resolve(path.dirname(file), p));
  const components: Record<string, Component> = {};
  const ctx = { rel, relAll: (ps: string[]) => ps.map((p) => path.resolve(path.dirname(file), p)) };
  for (const [name, c] of Object.entries(raw.components)) components[name] = resolveComponent(c, name, ctx);
  let store: Store;
  if (raw.store.kind === 's3') {
    const { secretAccessKey, sessionToken, ...rest } = raw.store;
    store = {
      ...rest,
      ...(secretAccessKey === undefined ? {} : { secretAccessKey: new Secret(secretAccessKey) }),
      ...(sessionToken === undefined ? {} : { sessionToken: new Secret(sessionToken) }),
    };
  } else {
    store = { ...raw.store, path: path.resolve(path.dirname(file), raw.store.path) };
  }
  const encryption = {
    ...raw.encryption,
    recipientsFile: rel(raw.encryption.recipientsFile),
    identityFile: rel(raw.encryption.identityFile),
    passphrase:
      raw.encryption.passphrase?.file === undefined
        ? raw.encryption.passphrase
        : { file: rel(raw.encryption.passphrase.file) },
  };
  const gateway: Gateway | undefined =
    raw.gateway === undefined
      ? undefined
      : {
          ...raw.gateway,
          keyProbe: raw.gateway.keyProbe === undefined ? undefined : { ...raw.gateway.keyProbe, key: new Secret(raw.gateway.keyProbe.key) },
        };
  return {
    file,
    store,
    encryption,
    compression: raw.compression,
    tiers,
    parallelism: raw.parallelism,
    components,
    gateway,
    dashboard: raw.dashboard,
    restore: { stagingDir: rel(raw.restore.stagingDir), reportDir: rel(raw.restore.reportDir) ?? 'tykdr-reports' },
    schedule: raw.schedule,
    retention: raw.retention,
    notifications: {
      webhooks: raw.notifications.webhooks.map((w) => ({
        ...w,
        // Header values often carry tokens: all of them are treated as secrets.
        headers: Object.fromEntries(Object.entries(w.headers).map(([k, v]) => [k, new Secret(v)])),
      })),
    },
    health: { ...raw.health, token: raw.health.token === undefined ? undefined : new Secret(raw.health.token) },
    leader: { ...raw.leader, password: raw.leader.password === undefined ? undefined : new Secret(raw.leader.password) },
    drill: { ...raw.drill, reportDir: rel(raw.drill.reportDir) },
  };
}
