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
/** An off-site copy store: a store section plus `auto` (the daemon copies new snapshots to it) and its own retention. */
export type CopyStore = Store & { auto: boolean; retention?: RawConfig['retention'] };

export interface Objective {
  rtoMs: number;
  rpoMs: number;
}

export type Gateway = Omit<GatewayConfig, 'keyProbe'> & {
  keyProbe?: Omit<NonNullable<GatewayConfig['keyProbe']>, 'key'> & { key: Secret };
  /**
   * Set only by a drill that started the gateway itself (never read from tykdr.yaml): the gateway's control
   * API secret (from the snapshot's tyk.conf) and how many APIs and policies the snapshot holds, for the
   * `gateway-loaded` check.
   */
  drill?: { controlSecret: Secret; expect: { apis: number; policies: number } };
};

export interface Config {
  /** Absolute path of the file this came from, or "(defaults)". */
  file: string;
  store: Store;
  /** Off-site copy stores by name ("primary" is `store`), in config order. */
  copies: Record<string, CopyStore>;
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
  signing: RawConfig['signing'];
  evidence: RawConfig['evidence'];
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * What the caller will read. An unset \${VAR} outside that part is no error: it reads as empty, and a value that is
 * then invalid there (an empty URL, a number) is left out, so its default applies. So the read-only commands work with
 * only what they read, and `tykdr backup` without the restore-side secrets (restore targets, the gateway's canary key).
 *
 * - `store`: the store (`snapshots`, `snapshot show`, `drills`).
 * - `decrypt`: the store and what decrypts a snapshot: `encryption.identityFile` and `encryption.passphrase` (`verify`).
 * - `retention`: the store and `retention` (`prune`: a retention setting read as its default could delete more).
 * - `backup`: everything but the restore side, the gateway, the dashboard, the daemon's settings and the identity file.
 * - `all`: everything (`restore`, `drill`, `daemon`).
 */
export type ConfigPurpose = 'store' | 'decrypt' | 'retention' | 'backup' | 'all';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  purpose?: ConfigPurpose;
  /** Dotted paths the caller will not read although its purpose covers them (e.g. the identity file when --identity is given). */
  except?: string[];
}

const top = (p: PropertyKey[]) => String(p[0]);
const NEEDED: Record<ConfigPurpose, (p: PropertyKey[]) => boolean> = {
  store: (p) => top(p) === 'store' || top(p) === 'copies',
  decrypt: (p) => top(p) === 'store' || top(p) === 'copies' || (top(p) === 'encryption' && ['identityFile', 'passphrase'].includes(String(p[1]))),
  retention: (p) => top(p) === 'store' || top(p) === 'copies' || top(p) === 'retention',
  backup: (p) =>
    !['gateway', 'dashboard', 'restore', 'health', 'notifications', 'leader', 'drill'].includes(top(p)) &&
    !(top(p) === 'components' && p[2] === 'restore') &&
    !(top(p) === 'encryption' && p[1] === 'identityFile'),
  all: () => true,
};

/** `needed` narrowed by `except` (a dotted path excepts itself and everything under it). */
function neededFor(purpose: ConfigPurpose, except: string[] = []): (p: PropertyKey[]) => boolean {
  const base = NEEDED[purpose];
  if (except.length === 0) return base;
  return (p) => {
    const dotted = p.map(String).join('.');
    return base(p) && !except.some((e) => dotted === e || dotted.startsWith(`${e}.`));
  };
}

/**
 * Reads, interpolates and validates a tykdr.yaml. Every error names the file, the path (and line),
 * the bad value where it is not secret, and the fix.
 */
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
  return parseConfig(text, abs, opts.env ?? process.env, opts.purpose, opts.except);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, purpose: ConfigPurpose = 'all', except: string[] = []): Config {
  const { doc, lineOf } = parseYaml(text, file);
  const required = neededFor(purpose, except);
  const where = (p: PropertyKey[]) => `${file}${lineOf(p)}`;
  const unset: UnsetRef[] = [];
  const fromEnv = new Set<string>();
  interpolate(doc.contents, [], env, where, required, unset, fromEnv);
  const data: unknown = doc.toJS() ?? {};
  // jitless: zod compiles a fast path (new Function) per object schema on its first parse, which a schema parsed once
  // per run never earns back: a median 17.1 -> 10.5 ms of every command's start-up here (bench/README.md, start-up).
  let parsed = configSchema.safeParse(data, { jitless: true });
  // Values emptied by an unset variable in a part the caller does not read may be invalid there: leave them out.
  for (let round = 0; !parsed.success && round < 8; round++) {
    const drop = parsed.error.issues.map((i) => leaveOut(data, i, unset)).filter((p): p is PropertyKey[] => p !== null);
    if (drop.length === 0) break;
    for (const p of drop) deleteAt(data, p);
    parsed = configSchema.safeParse(data, { jitless: true });
  }
  if (!parsed.success) {
    const ref = refOf(parsed.error.issues[0]!, unset);
    if (ref) throw unsetError(where, ref.path, ref.name);
    throw schemaError(parsed.error, data, file, lineOf, {
      secretKeys: SECRET_KEYS,
      // A value read from the environment may be a secret whatever its key: never echo it.
      hide: (p) => fromEnv.has(p.map(String).join('.')),
      fix: 'see `tykdr init` for a commented example, or schema/tykdr.schema.json',
    });
  }
  return resolve(parsed.data, file);
}

/** A \${VAR} that was unset where the caller does not need it, and read as empty. */
interface UnsetRef {
  path: PropertyKey[];
  name: string;
}

const startsWith = (p: readonly PropertyKey[], prefix: readonly PropertyKey[]) => prefix.length <= p.length && prefix.every((k, i) => String(p[i]) === String(k));

function unsetError(where: (p: PropertyKey[]) => string, p: PropertyKey[], name: string) {
  return badInput(
    `${where(p)}: ${p.join('.')} refers to environment variable \${${name}}, which is not set`,
    `export ${name}=... before running tykdr, or write \${${name}:-default}`,
  );
}

/**
 * For a schema issue about a value an unset variable emptied (in a part the caller does not read): the path to leave
 * out, so the default applies. A map key is left out, not an array element (that would shift the others): the key
 * holding the array goes instead. When the value is already out (a required field), its parent goes. Null: not
 * such an issue.
 */
function leaveOut(data: unknown, issue: { path: PropertyKey[]; code: string }, unset: UnsetRef[]): PropertyKey[] | null {
  const ref = refOf(issue, unset);
  if (!ref) return null;
  let target = startsWith(issue.path, ref.path) ? [...issue.path] : [...ref.path];
  while (target.length > 0 && (typeof target[target.length - 1] === 'number' || !hasAt(data, target))) target = target.slice(0, -1);
  return target.length > 0 ? target : null;
}

/** The emptied value an issue is about: at or above the issue's path, or below it for a check of the whole object (not a misspelt key). */
function refOf(issue: { path: PropertyKey[]; code: string }, unset: UnsetRef[]): UnsetRef | undefined {
  const whole = issue.path.length > 0 && issue.code !== 'unrecognized_keys';
  return unset.find((u) => startsWith(issue.path, u.path) || (whole && startsWith(u.path, issue.path)));
}

function hasAt(data: unknown, p: readonly PropertyKey[]): boolean {
  let v: unknown = data;
  for (const k of p) {
    if (!v || typeof v !== 'object' || !(String(k) in (v as object))) return false;
    v = (v as Record<string, unknown>)[String(k)];
  }
  return true;
}

function deleteAt(data: unknown, p: readonly PropertyKey[]): void {
  let v: unknown = data;
  for (const k of p.slice(0, -1)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[String(k)] : undefined;
  if (v && typeof v === 'object' && !Array.isArray(v)) delete (v as Record<string, unknown>)[String(p[p.length - 1])];
}

function interpolate(
  node: unknown,
  p: PropertyKey[],
  env: NodeJS.ProcessEnv,
  where: (p: PropertyKey[]) => string,
  required: (p: PropertyKey[]) => boolean,
  unset: UnsetRef[],
  fromEnv: Set<string>,
): void {
  if (isScalar(node) && typeof node.value === 'string') {
    if (node.value.search(ENV_REF) >= 0) fromEnv.add(p.map(String).join('.'));
    node.value = node.value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      if (required(p)) throw unsetError(where, p, name);
      unset.push({ path: p, name });
      return '';
    });
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      interpolate(pair.value, [...p, key], env, where, required, unset, fromEnv);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => interpolate(item, [...p, i], env, where, required, unset, fromEnv));
  }
}

const SECRET_KEYS = new Set(['password', 'secretAccessKey', 'sessionToken', 'key', 'uri', 'token', 'headers']);

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
  const resolveStore = <S extends RawConfig['store']>(s: S) => {
    if (s.kind === 's3') {
      const { secretAccessKey, sessionToken, ...rest } = s;
      return {
        ...rest,
        ...(secretAccessKey === undefined ? {} : { secretAccessKey: new Secret(secretAccessKey) }),
        ...(sessionToken === undefined ? {} : { sessionToken: new Secret(sessionToken) }),
      };
    }
    return { ...s, path: path.resolve(path.dirname(file), s.path) };
  };
  const store = resolveStore(raw.store) as Store;
  const copies: Record<string, CopyStore> = {};
  for (const [name, c] of Object.entries(raw.copies)) copies[name] = resolveStore(c) as CopyStore;
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
    copies,
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
    drill: {
      ...raw.drill,
      reportDir: rel(raw.drill.reportDir),
      gateway: raw.drill.gateway && { ...raw.drill.gateway, binary: raw.drill.gateway.binary.includes('/') ? rel(raw.drill.gateway.binary)! : raw.drill.gateway.binary, templates: rel(raw.drill.gateway.templates) },
    },
    signing: { ...raw.signing, keyFile: rel(raw.signing.keyFile) },
    evidence: raw.evidence,
  };
}
