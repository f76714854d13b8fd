import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BSON, Double, Int32, Long, MongoClient, ObjectId, type Db } from 'mongodb';
import { freePort } from './net.js';
import { toolsBin } from './paths.js';

/** Servers still running: killed when the test process exits, even if a test forgot stop(). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface FerretServer {
  host: string;
  port: number;
  username: string;
  password: string;
  /** mongodb://USER:PASSWORD@127.0.0.1:PORT/?authSource=admin */
  uri: string;
  /** SQLite files, state and ferretdb.log. Removed by stop(). */
  dir: string;
  /** A connected driver client (closed by stop()). */
  client(): Promise<MongoClient>;
  stop(): Promise<void>;
}

/**
 * Starts FerretDB v1 (SQLite backend, built by scripts/tools.sh into .tools/bin) on a free 127.0.0.1 port
 * in a temp dir, with authentication enforced (SCRAM, one admin user), and waits until the user can ping.
 * Throws when the binary is missing or the server does not come up.
 */
export async function startFerret(): Promise<FerretServer> {
  const bin = path.join(toolsBin, 'ferretdb');
  await access(bin).catch(() => {
    throw new Error(`${bin} is missing: run \`bash scripts/tools.sh\` (the test suite's global setup does)`);
  });
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

async function startOnce(bin: string): Promise<FerretServer> {
  const host = '127.0.0.1';
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-ferret-'));
  await mkdir(path.join(dir, 'data'));
  await mkdir(path.join(dir, 'state'));
  const username = 'admin';
  const password = 'ferret-Pw_1';
  const logFile = path.join(dir, 'ferretdb.log');
  const { openSync, closeSync } = await import('node:fs');
  const log = openSync(logFile, 'a');
  const child = spawn(
    bin,
    [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/data/`,
      `--listen-addr=${host}:${port}`,
      `--state-dir=${dir}/state`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=warn',
      '--test-enable-new-auth',
      '--setup-database=admin',
      `--setup-username=${username}`,
      `--setup-password=${password}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  running.add(child);
  const exited = new Promise<{ code: number | null }>((resolve) => child.once('exit', (code) => resolve({ code })));
  child.once('exit', () => running.delete(child));
  child.once('error', () => undefined);
  const uri = `mongodb://${username}:${password}@${host}:${port}/?authSource=admin`;
  const clients: MongoClient[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      await stop();
      throw new Error(`ferretdb exited with code ${child.exitCode} before answering:\n${text.slice(-2000)}`);
    }
    const probe = new MongoClient(uri, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
    try {
      await probe.connect();
      await probe.db('admin').command({ ping: 1 });
      await probe.close();
      break;
    } catch {
      await probe.close().catch(() => undefined);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('ferretdb did not answer within 20 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    port,
    username,
    password,
    uri,
    dir,
    client: async () => {
      const c = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
      await c.connect();
      clients.push(c);
      return c;
    },
    stop,
  };
}

/** The collections seedTykDashboard writes, by role. */
export const DASHBOARD_COLLECTIONS = [
  'portal_catalogue',
  'portal_configurations',
  'portal_css',
  'portal_developers',
  'portal_menus',
  'portal_pages',
  'tyk_analytics_users',
  'tyk_apis',
  'tyk_organisations',
  'tyk_policies',
];
export const ANALYTICS_COLLECTIONS = ['tyk_analytics', 'tyk_analytics_aggregates', 'tyk_uptime_analytics', 'z_tyk_analyticz_abc'];

const ORG_ID = '5e9d9544a1dcd60001d0ed20';
const day = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 9, 30, 0, 123));
const oid = (n: number, base = '65f000000000000000') => new ObjectId(`${base}${n.toString(16).padStart(24 - base.length, '0')}`);

/**
 * A Tyk-Dashboard-like database: organisations, APIs, policies, users, portal collections, and the analytics
 * collections a backup leaves out (tyk_analytics capped). Documents use the BSON types the Dashboard writes
 * (ObjectId, dates, int32/int64/double, nested documents, arrays of documents) within FerretDB v1's limits:
 * no nested arrays, no keys starting with $ or containing dots, no NaN/Infinity.
 */
export async function seedTykDashboard(db: Db, opts: { apis?: number; analytics?: number } = {}): Promise<void> {
  const apis = opts.apis ?? 40;
  await db.collection('tyk_organisations').insertOne({
    _id: oid(1, '5e9d9544a1dcd6'),
    owner_name: 'Acme Payments',
    owner_slug: 'acme',
    cname_enabled: true,
    cname: 'portal.acme.example',
    apis: Array.from({ length: apis }, (_, i) => ({ api_human_name: `API ${i}`, api_id: `api${i}` })),
    developer_quota: new Int32(500),
    developer_count: new Int32(12),
    event_options: { 'key-event': { webhook: 'https://hooks.acme.example/tyk', email: '', redis: false } },
    hybrid_enabled: false,
    ui: { languages: {}, hide_help: true, default_lang: 'en', login_page: {}, nav: {}, uptime: {}, portal_section: null, designer: {} },
    org_options_meta: {},
    created_at: day(0),
  });
  await db.collection('tyk_apis').insertMany(
    Array.from({ length: apis }, (_, i) => ({
      _id: oid(100 + i),
      api_definition: {
        id: oid(100 + i).toHexString(),
        name: `API ${i}`,
        slug: `api-${i}`,
        api_id: `api${i}`,
        org_id: ORG_ID,
        use_keyless: i % 5 === 0,
        use_oauth2: false,
        auth: { auth_header_name: 'Authorization', use_param: false },
        definition: { location: 'header', key: 'x-api-version', strip_path: false },
        version_data: {
          not_versioned: true,
          default_version: '',
          versions: { Default: { name: 'Default', expires: '', paths: { ignored: [], white_list: [], black_list: [] }, use_extended_paths: true } },
        },
        proxy: { listen_path: `/api-${i}/`, target_url: `http://upstream-${i % 3}.internal:8080/`, strip_listen_path: true, preserve_host_header: false },
        custom_middleware: { pre: [], post: [], driver: '' },
        tags: ['edge', `team-${i % 4}`],
        active: i % 7 !== 0,
        cache_options: { cache_timeout: new Int32(60), enable_cache: false },
        global_rate_limit: { rate: new Double(0), per: new Double(0) },
      },
      hook_references: [],
      is_site: false,
      sort_by: new Int32(i),
      user_group_owners: [],
      user_owners: [],
      created_at: day(i % 20),
    })),
  );
  await db.collection('tyk_policies').insertMany(
    Array.from({ length: 12 }, (_, i) => ({
      _id: oid(300 + i),
      id: `pol${i}`,
      name: `Policy ${i}`,
      org_id: ORG_ID,
      rate: new Double(100 + i),
      per: new Double(60),
      quota_max: new Long(i % 2 ? -1 : 10_000 * i),
      quota_renewal_rate: new Long(3600),
      throttle_interval: new Double(-1),
      access_rights: { [`api${i}`]: { api_id: `api${i}`, api_name: `API ${i}`, versions: ['Default'], allowed_urls: [] } },
      active: true,
      is_inactive: false,
      tags: [],
      key_expires_in: new Long(0),
      partitions: { quota: false, rate_limit: false, acl: false, per_api: false },
      last_updated: String(1_790_000_000 + i),
      date_created: day(i),
    })),
  );
  await db.collection('tyk_analytics_users').insertMany(
    Array.from({ length: 8 }, (_, i) => ({
      _id: oid(400 + i),
      org_id: ORG_ID,
      first_name: `User${i}`,
      last_name: 'Admin',
      email_address: `user${i}@acme.example`,
      password: `$2a$10$${'x'.repeat(53 - i)}`,
      active: true,
      user_permissions: { IsAdmin: i === 0 ? 'admin' : '', apis: 'write', policies: 'read' },
      created_at: day(i),
      access_key: `a${i}`.padEnd(32, '0'),
      password_max_days: new Int32(0),
    })),
  );
  await db.collection('portal_catalogue').insertOne({
    _id: oid(500),
    org_id: ORG_ID,
    apis: Array.from({ length: 5 }, (_, i) => ({ name: `API ${i}`, short_description: 'Payments', policy_id: `pol${i}`, show: true, version: 'v2', config: {} })),
    email: 'portal@acme.example',
  });
  await db.collection('portal_configurations').insertOne({ _id: oid(501), org_id: ORG_ID, signup_disabled: false, key_request_fields: ['company'], require_key_approval: true, redirect_on_key_request: false });
  await db.collection('portal_css').insertOne({ _id: oid(502), org_id: ORG_ID, email_css: '', page_css: 'body { color: #222; }' });
  await db.collection('portal_developers').insertMany(
    Array.from({ length: 25 }, (_, i) => ({
      _id: oid(600 + i),
      email: `dev${i}@example.com`,
      org_id: ORG_ID,
      date_created: day(i % 10),
      inactive: i % 9 === 0,
      fields: { company: `Company ${i % 6}` },
      subscriptions: { [`pol${i % 12}`]: `key-hash-${i}` },
      keys: { [`key-hash-${i}`]: [`pol${i % 12}`] },
    })),
  );
  await db.collection('portal_menus').insertOne({ _id: oid(700), org_id: ORG_ID, menus: { main: [{ title: 'Home', url: '/portal/' }, { title: 'APIs', url: '/portal/apis/' }] } });
  await db.collection('portal_pages').insertMany([
    { _id: oid(710), org_id: ORG_ID, title: 'Home', slug: 'home', template_name: 'default_home_page', is_homepage: true, fields: { JumboCTATitle: 'Welcome' } },
    { _id: oid(711), org_id: ORG_ID, title: 'Terms', slug: 'terms', template_name: 'default', is_homepage: false, fields: { PanelOneContent: 'Be nice.' } },
  ]);

  await db.collection('tyk_apis').createIndex({ 'api_definition.api_id': 1 }, { name: 'api_id_unique', unique: true });
  await db.collection('tyk_apis').createIndex({ 'api_definition.org_id': 1, sort_by: 1 }, { name: 'org_sort' });
  await db.collection('tyk_policies').createIndex({ org_id: 1 }, { name: 'org_id_1' });
  await db.collection('tyk_analytics_users').createIndex({ email_address: 1 }, { name: 'email_unique', unique: true });
  await db.collection('portal_developers').createIndex({ email: 1, org_id: 1 }, { name: 'email_org', unique: true });
  await db.collection('tyk_organisations').createIndex({ owner_slug: 1 }, { name: 'owner_slug_1' });

  // Analytics: what the backup leaves out by default.
  const n = opts.analytics ?? 200;
  await db.createCollection('tyk_analytics', { capped: true, size: 1024 * 1024, max: 5000 });
  const record = (i: number) => ({
    method: 'GET', host: 'gw.acme.example', path: `/api-${i % 40}/orders`, raw_path: `/api-${i % 40}/orders`,
    response_code: new Int32(i % 13 === 0 ? 500 : 200), api_key: `hash${i}`, timestamp: new Date(Date.UTC(2026, 10, 20, 0, 0, i % 60)),
    api_version: 'Default', api_name: `API ${i % 40}`, api_id: `api${i % 40}`, org_id: ORG_ID, request_time: new Long(12 + (i % 50)),
    latency: { total: new Long(14), upstream: new Long(11) }, tags: ['key-hash', `api-${i % 40}`], expireAt: new Date(Date.UTC(2026, 11, 20)),
  });
  await db.collection('tyk_analytics').insertMany(Array.from({ length: n }, (_, i) => record(i)));
  await db.collection('z_tyk_analyticz_abc').insertMany(Array.from({ length: n / 2 }, (_, i) => record(i)));
  await db.collection('tyk_analytics_aggregates').insertMany(
    Array.from({ length: 10 }, (_, i) => ({ orgid: ORG_ID, timestamp: day(i), total: { hits: new Long(1000 + i), success: new Long(990), errortotal: new Long(10) }, apiid: { api1: { hits: new Long(5) } } })),
  );
  await db.collection('tyk_uptime_analytics').insertMany(Array.from({ length: 20 }, (_, i) => ({ url: `http://upstream-${i % 3}.internal:8080/health`, response_code: new Int32(200), timestamp: day(i % 5), org_id: ORG_ID })));
}

/**
 * Every document of a collection sorted by _id, as canonical Extended JSON with the BSON types as stored
 * (no promotion of int32/int64/double to JS numbers): to compare databases.
 */
export async function dumpCollection(db: Db, name: string): Promise<string[]> {
  const docs = await db.collection(name).find({}, { promoteValues: false, promoteLongs: false }).sort({ _id: 1 }).toArray();
  return docs.map((d) => BSON.EJSON.stringify(d, { relaxed: false }));
}

/** name -> documents, for every collection of the database (system.* left out). */
export async function dumpDatabase(db: Db): Promise<Record<string, string[]>> {
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => !n.startsWith('system.')).sort();
  const out: Record<string, string[]> = {};
  for (const n of names) out[n] = await dumpCollection(db, n);
  return out;
}
