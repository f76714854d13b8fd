import path from 'node:path';

/**
 * How a drill rewrites the snapshot's tyk.conf so the operator's Tyk Gateway runs against scratch targets
 * only. Pure: the caller reads and writes the files. What is rewritten (docs/DRILLS.md lists it too):
 * - listen on 127.0.0.1 at the drill's free port; the control API on the same port (control_api_port removed);
 * - storage (and cache_storage, analytics_storage when set) at the scratch Redis: host, port, password;
 *   cluster, Sentinel, TLS and username settings removed; the database index kept (keys keep their index);
 * - app_path at the drill's rewritten copy of the restored apps/; policies from files, at the restored
 *   policies (policy_path folder or policy_record_name file); template_path at the templates given;
 * - nothing reaches production: no Dashboard (use_db_app_configs off, policy_source file), no MDCB
 *   (slave_options.use_rpc off), no uptime tests, no analytics, no TLS listener, pid file in the work dir.
 * Kept as they are: secret (certificates in Redis are encrypted with it), hash_keys and hash_key_function,
 * health_check_endpoint_name, everything else.
 */
export interface DrillConfInput {
  /** The snapshot's tyk.conf, parsed. */
  conf: Record<string, unknown>;
  /** The folder the restored tyk.conf is in: relative paths in it are resolved from there. */
  confDir: string;
  port: number;
  redis: { host: string; port: number; password?: string };
  /** The drill's rewritten copy of the API definitions. */
  appPath: string;
  templatePath: string;
  pidFile: string;
}

export interface DrillConf {
  conf: Record<string, unknown>;
  /** Where the restored API definitions are (to copy and rewrite). */
  sourceAppPath: string;
  /** The restored policies: a folder (policy_path) or one file (policy_record_name). */
  policies: { kind: 'folder' | 'file'; path: string };
}

const STORAGE_DROPPED = ['addrs', 'hosts', 'enable_cluster', 'master_name', 'sentinel_password', 'username', 'use_ssl', 'ssl_insecure_skip_verify', 'ca_file', 'cert_file', 'key_file', 'tls_max_version', 'tls_min_version'];

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function drillTykConf(i: DrillConfInput): DrillConf {
  const c = { ...i.conf };
  const resolve = (p: string) => path.resolve(i.confDir, p);
  const pointAtScratch = (s: Record<string, unknown>) => {
    for (const k of STORAGE_DROPPED) delete s[k];
    return { ...s, type: 'redis', host: i.redis.host, port: i.redis.port, password: i.redis.password ?? '' };
  };
  c.listen_address = '127.0.0.1';
  c.listen_port = i.port;
  delete c.control_api_port;
  delete c.control_api_hostname;
  c.storage = pointAtScratch(obj(c.storage));
  if (c.cache_storage !== undefined) c.cache_storage = pointAtScratch(obj(c.cache_storage));
  if (c.analytics_storage !== undefined) c.analytics_storage = pointAtScratch(obj(c.analytics_storage));

  const sourceAppPath = resolve(str(c.app_path) ?? 'apps/');
  c.app_path = i.appPath.endsWith('/') ? i.appPath : `${i.appPath}/`;
  const pol = obj(c.policies);
  const policyPath = str(pol.policy_path);
  const policies: DrillConf['policies'] = policyPath
    ? { kind: 'folder', path: resolve(policyPath) }
    : { kind: 'file', path: resolve(str(pol.policy_record_name) ?? 'policies/policies.json') };
  c.policies = {
    ...pol,
    policy_source: 'file',
    ...(policies.kind === 'folder' ? { policy_path: policies.path } : { policy_record_name: policies.path }),
  };
  c.template_path = i.templatePath;
  if (str(c.middleware_path)) c.middleware_path = resolve(str(c.middleware_path)!);

  c.use_db_app_configs = false;
  c.slave_options = { ...obj(c.slave_options), use_rpc: false };
  c.uptime_tests = { ...obj(c.uptime_tests), disable: true };
  c.enable_analytics = false;
  c.http_server_options = { ...obj(c.http_server_options), use_ssl: false };
  c.pid_file_location = i.pidFile;
  return { conf: c, sourceAppPath, policies };
}

/**
 * An API definition pointed at the drill's scratch upstream, so no request of the drill reaches a
 * production service: classic definitions (proxy.target_url, load-balanced proxy.targets, service
 * discovery off) and Tyk OAS ones (x-tyk-api-gateway.upstream.url). Listen paths and auth stay as they are.
 */
export function drillApiDefinition(def: Record<string, unknown>, upstream: string): Record<string, unknown> {
  const d = { ...def };
  if (d.proxy !== undefined) {
    const proxy = obj(d.proxy);
    proxy.target_url = upstream;
    if (Array.isArray(proxy.targets) && proxy.targets.length > 0) proxy.targets = [upstream];
    if (proxy.service_discovery !== undefined) proxy.service_discovery = { ...obj(proxy.service_discovery), use_discovery_service: false };
    d.proxy = proxy;
  }
  const ext = obj(d['x-tyk-api-gateway']);
  if (d['x-tyk-api-gateway'] !== undefined) {
    ext.upstream = { ...obj(ext.upstream), url: upstream };
    d['x-tyk-api-gateway'] = ext;
  }
  return d;
}

/** API definition files Tyk loads from app_path: every *.json; a Tyk OAS API is a pair (<id>.json, <id>-oas.json) and counts once. */
export function countsAsApi(file: string): boolean {
  return file.endsWith('.json') && !file.endsWith('-oas.json');
}
