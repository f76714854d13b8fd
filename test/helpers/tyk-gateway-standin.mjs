#!/usr/bin/env node
// A stand-in for the Tyk Gateway binary, for drill tests: same command line (`tyk --conf FILE`), reads what
// the real gateway reads from tyk.conf and serves keys from Redis the way Tyk does (shared/TYK-NOTES.md;
// the behaviour of test/helpers/gateway-standin.ts, driven by the conf file instead of options):
// listen_address/listen_port, storage host/port/password/database, app_path (classic API definitions:
// proxy.listen_path, proxy.target_url, strip_listen_path, use_keyless), policies (policy_path folder or
// policy_record_name file), secret (control API: /tyk/apis, /tyk/policies with x-tyk-authorization),
// health_check_endpoint_name, hash_keys (false, or true with sha256; other hash functions exit 1).
// Like a gateway with plugins, it starts a child process in its process group, so tests can check that the
// whole group stops. It logs its secret once, so tests can check that tykdr scrubs the log.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { Redis } from 'ioredis';

const log = (msg) => process.stdout.write(`time="${new Date().toISOString()}" level=info msg="${msg}" prefix=main\n`);
const fail = (msg) => {
  process.stderr.write(`time="${new Date().toISOString()}" level=fatal msg="${msg}"\n`);
  process.exit(1);
};

const i = process.argv.indexOf('--conf');
if (i < 0 || !process.argv[i + 1]) fail('usage: tyk --conf FILE');
const confFile = process.argv[i + 1];
let conf;
try {
  conf = JSON.parse(readFileSync(confFile, 'utf8'));
} catch (err) {
  fail(`could not read ${confFile}: ${err.message}`);
}
const secret = String(conf.secret ?? '');
log(`Tyk Gateway stand-in v5.14.0-standin, conf ${confFile}; control secret is ${secret}`);
const hashKeys = conf.hash_keys === true;
const hashFn = String(conf.hash_key_function || 'murmur32');
if (hashKeys && hashFn !== 'sha256') fail(`stand-in: hash_key_function ${hashFn} is not implemented (use hash_keys false or sha256)`);
const keyName = (key) => `apikey-${hashKeys ? createHash('sha256').update(key).digest('hex') : key}`;

const apis = [];
const appPath = String(conf.app_path ?? 'apps/');
for (const n of readdirSync(appPath).filter((f) => f.endsWith('.json') && !f.endsWith('-oas.json')).sort()) {
  try {
    const d = JSON.parse(readFileSync(path.join(appPath, n), 'utf8'));
    const listen = String(d.proxy?.listen_path ?? '/');
    apis.push({ id: String(d.api_id ?? n), def: d, listen: listen.endsWith('/') ? listen : `${listen}/`, target: String(d.proxy?.target_url ?? ''), strip: d.proxy?.strip_listen_path !== false, keyless: d.use_keyless === true });
    log(`Loading API: ${d.name ?? n}`);
  } catch (err) {
    process.stdout.write(`level=error msg="Couldn't unmarshal api configuration ${n}: ${err.message}"\n`);
  }
}
const policies = [];
const pol = conf.policies ?? {};
try {
  if (pol.policy_path) {
    for (const n of readdirSync(pol.policy_path).filter((f) => f.endsWith('.json'))) policies.push(JSON.parse(readFileSync(path.join(pol.policy_path, n), 'utf8')));
  } else if (pol.policy_record_name) {
    const j = JSON.parse(readFileSync(pol.policy_record_name, 'utf8'));
    policies.push(...(Array.isArray(j) ? j : Object.entries(j).map(([id, p]) => ({ id, ...p }))));
  }
} catch (err) {
  log(`policies: ${err.message}`);
}
log(`Loaded ${apis.length} APIs, ${policies.length} policies`);

const st = conf.storage ?? {};
const redis = new Redis({ host: st.host, port: st.port, password: st.password || undefined, db: st.database ?? 0, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => 200 });
redis.on('error', () => undefined);
redis.connect().catch(() => undefined);
const redisUp = async () => {
  try {
    return (await Promise.race([redis.ping(), new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 500))])) === 'PONG';
  } catch {
    return false;
  }
};

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const hello = `/${conf.health_check_endpoint_name || 'hello'}`;

const server = createServer(async (req, res) => {
  const p = (req.url ?? '/').split('?')[0];
  if (p === '/ready') return (await redisUp()) ? json(res, 200, { status: 'ok', message: 'Gateway is ready' }) : json(res, 503, { status: 'error', message: 'Redis connection not available' });
  if (p === hello) {
    const up = await redisUp();
    const time = new Date().toISOString();
    const redisDetail = up ? { status: 'pass', componentType: 'datastore', time } : { status: 'fail', componentType: 'datastore', output: 'storage: Redis is either down or was not configured', time };
    return json(res, up ? 200 : 503, { status: up ? 'pass' : 'fail', version: 'v5.14.0-standin', description: 'Tyk GW', details: { redis: redisDetail } });
  }
  if (p.startsWith('/tyk/')) {
    if (secret === '' || req.headers['x-tyk-authorization'] !== secret) return json(res, 403, { status: 'error', message: 'Attempted administrative access with invalid or missing key!' });
    if (p === '/tyk/apis' || p === '/tyk/apis/') return json(res, 200, apis.map((a) => a.def));
    if (p === '/tyk/policies' || p === '/tyk/policies/') return json(res, 200, policies);
    return json(res, 404, { status: 'error', message: 'Not found' });
  }
  const api = apis.filter((a) => p.startsWith(a.listen) || `${p}/` === a.listen).sort((a, b) => b.listen.length - a.listen.length)[0];
  if (!api) return json(res, 404, { error: 'Not Found' });
  if (!api.keyless) {
    const key = req.headers.authorization;
    if (!key) return json(res, 401, { error: 'Authorization field missing' });
    let session = null;
    try {
      session = await redis.get(keyName(key));
    } catch {
      session = null;
    }
    if (session === null) return json(res, 403, { error: 'Access to this API has been disallowed' });
    try {
      const rights = JSON.parse(session).access_rights ?? {};
      if (Object.keys(rights).length > 0 && !rights[api.id]) return json(res, 403, { error: 'Access to this API has been disallowed' });
    } catch {
      return json(res, 403, { error: 'Access to this API has been disallowed' });
    }
  }
  const rest = api.strip ? p.slice(api.listen.length) : p.replace(/^\//, '');
  try {
    const up = await fetch(`${api.target.replace(/\/+$/, '')}/${rest}`, { method: req.method, signal: AbortSignal.timeout(5000) });
    res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream' });
    res.end(Buffer.from(await up.arrayBuffer()));
  } catch {
    json(res, 502, { error: 'There was a problem proxying the request' });
  }
});

// A long-lived helper in the gateway's process group (like a plugin process); its arguments name the conf.
const helper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', 'tyk-standin-helper', confFile], { stdio: 'ignore' });
helper.on('error', () => undefined);

if (conf.pid_file_location) writeFileSync(conf.pid_file_location, String(process.pid));
server.listen(conf.listen_port ?? 8080, conf.listen_address || '0.0.0.0', () => log(`Gateway started, listening on port ${conf.listen_port}`));
const stop = () => {
  log('Stop signal received.');
  helper.kill('SIGTERM');
  server.close();
  redis.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
