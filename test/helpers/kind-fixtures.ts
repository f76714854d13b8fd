import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { Int32, Long, MongoClient, ObjectId } from 'mongodb';
import pgDriver from 'pg';
import { openSources } from '../../src/backends/registry.js';
import { parseConfig, type Component, type Config, type FilesComponent, type MongoComponent, type PostgresComponent, type RedisComponent } from '../../src/core/config/load.js';
import type { Source, SourceFacts } from '../../src/core/interfaces/source.js';
import type { ManifestComponent } from '../../src/core/manifest.js';
import { destinationOf } from '../../src/core/restore/destination.js';
import { dumpDatabase, startFerret, type FerretServer } from './mongo.js';
import { freePort } from './net.js';
import { toolsBin } from './paths.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startRedis, type RedisServer } from './redis-server.js';

/**
 * One fixture per component kind of the registry (src/backends/registry.ts), for the Source and Target
 * conformance suites: a real server (or folder tree), a parsed tykdr.yaml component pointing at it, a small
 * Tyk-like dataset, a way to damage it, and a fingerprint of the data a restore must bring back.
 *
 * Every component comes from `parseConfig` (defaults applied by the real schema); secrets are `${VAR}`
 * references filled from an environment, as the README recommends.
 */
export interface KindFixture {
  readonly kind: Component['kind'];
  /** Values the component's config holds that must never appear in facts, assessments or errors. */
  readonly secrets: string[];
  /** Starts the server(s) and seeds production. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The parsed config holding every component below (a target's scratch() reads it). */
  config(): Config;
  /** Production: backed up from and restored to the seeded place. */
  component(): Component;
  /** Its source cannot be reached (closed port, missing folder). */
  unreachableSource(): Component;
  /** Its restore target cannot be reached (closed port) or written (a folder below a regular file). */
  unreachableTarget(): Component;
  /** Its restore target is an empty place of this kind. */
  emptyTarget(): Component;
  /** Puts production back to the canonical dataset (wipe, then seed): the same fingerprint every time. */
  seed(): Promise<void>;
  /** Wipes part of production and changes most of the rest, so that only a restore brings it back. */
  damage(): Promise<void>;
  /** The data in the place `c` restores to (default: production), comparable with toEqual. */
  fingerprint(c?: Component): Promise<unknown>;
  /** True when the place `c` restores to no longer exists (a scratch target after stop()). */
  gone(c: Component): Promise<boolean>;
}

/** tykdr.yaml around one component section per name; `${VAR}` filled from `env`. */
function parseComponents(sections: Record<string, string>, env: Record<string, string>): Config {
  const indent = (s: string) => s.trim().split('\n').map((l) => `    ${l}`).join('\n');
  const yaml =
    'store: { kind: local, path: /tmp/tykdr-conformance-unused }\nencryption: { recipients: [] }\ncomponents:\n' +
    Object.entries(sections).map(([name, body]) => `  ${name}:\n${indent(body)}\n`).join('');
  return parseConfig(yaml, '/tmp/tykdr-conformance.yaml', { ...process.env, ...env });
}

const NAMES = { prod: 'prod', unreachableSource: 'unreachable-source', unreachableTarget: 'unreachable-target', empty: 'empty-target' } as const;

/** Common plumbing: a config with the four components, looked up by role. */
abstract class BaseFixture implements KindFixture {
  abstract readonly kind: Component['kind'];
  abstract readonly secrets: string[];
  protected cfg: Config | null = null;
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract seed(): Promise<void>;
  abstract damage(): Promise<void>;
  abstract fingerprint(c?: Component): Promise<unknown>;
  abstract gone(c: Component): Promise<boolean>;

  config(): Config {
    if (!this.cfg) throw new Error(`${this.kind} fixture: start() first`);
    return this.cfg;
  }
  private get(name: string): Component {
    return this.config().components[name]!;
  }
  component(): Component {
    return this.get(NAMES.prod);
  }
  unreachableSource(): Component {
    return this.get(NAMES.unreachableSource);
  }
  unreachableTarget(): Component {
    return this.get(NAMES.unreachableTarget);
  }
  emptyTarget(): Component {
    return this.get(NAMES.empty);
  }
}

// ---------------------------------------------------------------------------------------------- redis

const REDIS_PASSWORD = 'redis-conf-Pw-7731';
const HOUR = 3600;

/**
 * Redis master with one replica (so every Redis check, redis-replicas included, has something to check),
 * and a second, empty server. The dataset holds only key classes a live restore copies by default
 * (must, should, other: shared/TYK-NOTES.md), in two databases, with TTLs on whole hours.
 */
class RedisFixture extends BaseFixture {
  readonly kind = 'redis';
  readonly secrets = [REDIS_PASSWORD];
  private master!: RedisServer;
  private replica!: RedisServer;
  private empty!: RedisServer;

  async start(): Promise<void> {
    [this.master, this.empty] = await Promise.all([startRedis({ password: REDIS_PASSWORD }), startRedis({ password: REDIS_PASSWORD })]);
    this.replica = await startRedis({
      password: REDIS_PASSWORD,
      args: ['--replicaof', this.master.host, String(this.master.port), '--masterauth', REDIS_PASSWORD],
    });
    await this.waitForReplica();
    const closed = await freePort();
    const base = `kind: redis\nhost: 127.0.0.1\npassword: \${REDIS_PASSWORD}\nconnectTimeout: 5s`;
    this.cfg = parseComponents(
      {
        [NAMES.prod]: `${base}\nport: ${this.master.port}\nrestore: { sample: 1000 }`,
        [NAMES.unreachableSource]: `${base}\nport: ${closed}`,
        [NAMES.unreachableTarget]: `${base}\nport: ${this.master.port}\nrestore: { target: { port: ${closed} } }`,
        [NAMES.empty]: `${base}\nport: ${this.master.port}\nrestore: { target: { port: ${this.empty.port}, password: "\${REDIS_PASSWORD}" } }`,
      },
      { REDIS_PASSWORD },
    );
    await this.seed();
  }

  private async waitForReplica(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await this.master.cli('INFO', 'replication');
      if (/connected_slaves:1/.test(info) && /slave0:.*state=online/.test(info)) return;
      if (Date.now() > deadline) throw new Error(`the replica did not come online:\n${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.replica?.stop(), this.master?.stop(), this.empty?.stop()]);
  }

  private client(db: number, port = this.master.port, password = REDIS_PASSWORD): Redis {
    return new Redis({ host: '127.0.0.1', port, password, db, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  }

  async seed(): Promise<void> {
    const r0 = this.client(0);
    const r1 = this.client(1);
    try {
      await r0.connect();
      await r1.connect();
      await r0.flushall();
      const session = (i: number) => JSON.stringify({ org_id: 'org1', alias: `user-${i}`, access_rights: { api1: { api_id: 'api1', versions: ['Default'] } }, expires: 0 });
      const p = r0.pipeline();
      for (let i = 0; i < 12; i++) p.set(`apikey-${i.toString(16).padStart(32, '0')}`, session(i), 'EX', (1 + (i % 3)) * 24 * HOUR);
      p.set('apikey-canary0000000000000000000000000', session(-1));
      p.set('orgkey.org1', JSON.stringify({ org_id: 'org1', quota_max: 1000 }));
      p.set('oauth-data.api1.oauth-clientid.client1', JSON.stringify({ id: 'client1', secret: 'x' }));
      p.sadd('oauth-data.api1.oauth-clientset.org1', 'client1', 'client2');
      p.rpush('oauth-data.api1.oauth-client-index.org1', 'client1', 'client2');
      p.set('oauth-data.api1.oauth-access.token1', '{"client_id":"client1"}', 'EX', HOUR);
      p.set('oauth-data.api1.oauth-refresh.refresh1', '{"client_id":"client1"}', 'EX', 2 * HOUR);
      p.zadd('oauth-data.api1.oauth-client-tokens.client1', 1_800_000_000, 'token1', 1_800_000_100, 'token2');
      p.set('cert-raw-org1abc', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----');
      p.rpush('cert-org1-index', 'org1abc');
      p.set('tyk-admin-api-abcdef', JSON.stringify({ user: 'admin' }), 'EX', 12 * HOUR);
      p.hset('coprocess-data:plugin1', { state: 'on', count: '3' });
      p.xadd('app-events', '1700000000000-0', 'event', 'deploy');
      p.set('some-other-app-key', 'not tyk');
      await p.exec();
      await r1.set('apikey-db1000000000000000000000000000', session(100), 'EX', 48 * HOUR);
      await r1.set('orgkey.org2', JSON.stringify({ org_id: 'org2' }));
    } finally {
      r0.disconnect();
      r1.disconnect();
    }
  }

  async damage(): Promise<void> {
    const r0 = this.client(0);
    const r1 = this.client(1);
    try {
      await r0.connect();
      await r1.connect();
      await r0.del('apikey-00000000000000000000000000000000', 'orgkey.org1', 'cert-org1-index');
      await r0.set('apikey-00000000000000000000000000000001', 'overwritten', 'EX', 5 * HOUR);
      await r0.persist('oauth-data.api1.oauth-access.token1');
      await r0.expire('some-other-app-key', 3 * HOUR);
      await r0.hset('coprocess-data:plugin1', { state: 'off' });
      await r0.sadd('oauth-data.api1.oauth-clientset.org1', 'intruder');
      await r1.flushdb();
    } finally {
      r0.disconnect();
      r1.disconnect();
    }
  }

  private where(c: Component): { port: number; password: string | undefined } {
    const rc = c as RedisComponent;
    return { port: rc.restore.target?.port ?? rc.port, password: (rc.restore.target?.password ?? rc.password)?.reveal() };
  }

  /** db/key -> type, value and TTL in whole hours (-1: none), for every database that has keys. */
  async fingerprint(c: Component = this.component()): Promise<Record<string, string>> {
    const { port, password } = this.where(c);
    const out: Record<string, string> = {};
    const admin = this.client(0, port, password);
    await admin.connect();
    let dbs: number[];
    try {
      dbs = [...String(await admin.info('keyspace')).matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
    } finally {
      admin.disconnect();
    }
    for (const db of dbs) {
      const r = this.client(db, port, password);
      await r.connect();
      try {
        for (const key of (await r.keys('*')).sort()) {
          const type = await r.type(key);
          let value: unknown;
          if (type === 'string') value = await r.get(key);
          else if (type === 'hash') value = Object.entries(await r.hgetall(key)).sort();
          else if (type === 'list') value = await r.lrange(key, 0, -1);
          else if (type === 'set') value = (await r.smembers(key)).sort();
          else if (type === 'zset') value = await r.call('ZRANGE', key, '0', '-1', 'WITHSCORES');
          else if (type === 'stream') value = await r.xrange(key, '-', '+');
          const pttl = await r.pttl(key);
          const ttl = pttl < 0 ? -1 : Math.round(pttl / (HOUR * 1000));
          out[`${db}/${key}`] = `${type} ttl=${ttl}h ${JSON.stringify(value)}`;
        }
      } finally {
        r.disconnect();
      }
    }
    return out;
  }

  async gone(c: Component): Promise<boolean> {
    const r = this.client(0, this.where(c).port, this.where(c).password);
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      return false;
    } catch {
      return true;
    } finally {
      r.disconnect();
    }
  }
}

// ------------------------------------------------------------------------------------------- postgres

const PG_DB = 'tyk_analytics';

/** A PostgreSQL 15 cluster; the component connects as the superuser (a drill's scratch database needs CREATEDB). */
class PostgresFixture extends BaseFixture {
  readonly kind = 'postgres';
  secrets: string[] = [];
  private pg!: PostgresServer;

  async start(): Promise<void> {
    this.pg = await startPostgres();
    this.secrets = [this.pg.superPassword];
    const closed = await freePort();
    const base = `kind: postgres\nhost: 127.0.0.1\ndatabase: ${PG_DB}\nusername: ${this.pg.superuser}\npassword: \${PG_PASSWORD}\nbinDir: ${this.pg.binDir}`;
    this.cfg = parseComponents(
      {
        [NAMES.prod]: `${base}\nport: ${this.pg.port}`,
        [NAMES.unreachableSource]: `${base}\nport: ${closed}`,
        [NAMES.unreachableTarget]: `${base}\nport: ${this.pg.port}\nrestore: { target: { port: ${closed} } }`,
        [NAMES.empty]: `${base}\nport: ${this.pg.port}\nrestore: { target: { database: conformance_empty } }`,
      },
      { PG_PASSWORD: this.pg.superPassword },
    );
    await this.seed();
  }

  async stop(): Promise<void> {
    await this.pg?.stop();
  }

  async seed(): Promise<void> {
    await this.pg.query('postgres', `DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`);
    await this.pg.query('postgres', `CREATE DATABASE ${PG_DB}`);
    const c = await this.pg.client(PG_DB);
    try {
      await c.query(`
        CREATE TABLE tyk_organisations (id text PRIMARY KEY, owner_name text NOT NULL, cname text);
        CREATE TABLE tyk_apis (
          id bigserial PRIMARY KEY, api_id text NOT NULL UNIQUE, org_id text NOT NULL REFERENCES tyk_organisations(id),
          name text NOT NULL, api_definition jsonb NOT NULL);
        CREATE INDEX tyk_apis_org_idx ON tyk_apis (org_id);
        CREATE TABLE tyk_policies (id text PRIMARY KEY, org_id text NOT NULL, name text, access_rights jsonb, rate int, per int);
        CREATE TABLE portal_developers (id text PRIMARY KEY, email text NOT NULL, keys jsonb);
        CREATE UNIQUE INDEX portal_developers_email ON portal_developers (lower(email));
        CREATE VIEW tyk_api_names AS SELECT api_id, name FROM tyk_apis;
        INSERT INTO tyk_organisations SELECT 'org' || i, 'Org ' || i, 'org' || i || '.example.com' FROM generate_series(1, 3) i;
        INSERT INTO tyk_apis (api_id, org_id, name, api_definition)
          SELECT md5('api' || i), 'org' || (1 + i % 3), 'API ' || i,
                 jsonb_build_object('name', 'API ' || i, 'proxy', jsonb_build_object('listen_path', '/api' || i || '/'), 'tags', jsonb_build_array('é-ü-✓'))
          FROM generate_series(1, 20) i;
        INSERT INTO tyk_policies SELECT 'pol' || i, 'org1', 'Policy ' || i, '{"api1": {"versions": ["Default"]}}', 100, 60 FROM generate_series(1, 8) i;
        INSERT INTO portal_developers SELECT 'dev' || i, 'dev' || i || '@example.com', '{}' FROM generate_series(1, 5) i;
      `);
    } finally {
      await c.end();
    }
  }

  async damage(): Promise<void> {
    const c = await this.pg.client(PG_DB);
    try {
      await c.query(`
        DELETE FROM tyk_apis WHERE id % 2 = 0;
        UPDATE tyk_policies SET rate = 1;
        INSERT INTO tyk_organisations VALUES ('orgX', 'Intruder', NULL);
        DROP TABLE portal_developers;
      `);
    } finally {
      await c.end();
    }
  }

  private database(c: Component): string {
    const pc = c as PostgresComponent;
    return pc.restore.target?.database ?? pc.database;
  }

  private async exists(database: string): Promise<boolean> {
    return (await this.pg.query('postgres', 'SELECT 1 FROM pg_database WHERE datname = $1', [database])).length > 0;
  }

  /** "schema.table" -> its row count and an MD5 of every row (as JSON, ordered), plus the index names; {} when the database is missing. */
  async fingerprint(c: Component = this.component()): Promise<Record<string, string>> {
    const database = this.database(c);
    if (!(await this.exists(database))) return {};
    const out: Record<string, string> = {};
    const client = await this.pg.client(database);
    try {
      const tables = await client.query<{ s: string; t: string }>(
        `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`,
      );
      for (const { s, t } of tables.rows) {
        const name = `${pgDriver.escapeIdentifier(s)}.${pgDriver.escapeIdentifier(t)}`;
        const r = await client.query<{ n: string; d: string | null }>(
          `SELECT count(*)::text AS n, md5(string_agg(row_to_json(x)::text, E'\\n' ORDER BY row_to_json(x)::text)) AS d FROM ${name} x`,
        );
        out[`${s}.${t}`] = `${r.rows[0]!.n} rows ${r.rows[0]!.d ?? 'empty'}`;
      }
      const idx = await client.query<{ i: string }>(
        `SELECT schemaname || '.' || tablename || ': ' || indexname AS i FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
      );
      out['(indexes)'] = idx.rows.map((r) => r.i).join(', ');
    } finally {
      await client.end();
    }
    return out;
  }

  async gone(c: Component): Promise<boolean> {
    return !(await this.exists(this.database(c)));
  }
}

// ---------------------------------------------------------------------------------------------- mongo

const MONGO_DB = 'tyk_analytics';
const ORG = '5e9d9544a1dcd60001d0ed20';
const oid = (n: number) => new ObjectId(n.toString(16).padStart(24, '0'));

/** FerretDB v1 (SQLite) with authentication; mongodump/mongorestore from .tools/bin. */
class MongoFixture extends BaseFixture {
  readonly kind = 'mongo';
  secrets: string[] = [];
  private ferret!: FerretServer;
  private client!: MongoClient;

  async start(): Promise<void> {
    this.ferret = await startFerret();
    this.client = await this.ferret.client();
    this.secrets = [this.ferret.password];
    const closed = await freePort();
    const uri = (port: number) => `"mongodb://${this.ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${port}/?authSource=admin"`;
    const base = `kind: mongo\ndatabase: ${MONGO_DB}\nbinDir: ${toolsBin}\nconnectTimeout: 3s`;
    this.cfg = parseComponents(
      {
        [NAMES.prod]: `${base}\nuri: ${uri(this.ferret.port)}`,
        [NAMES.unreachableSource]: `${base}\nuri: ${uri(closed)}`,
        [NAMES.unreachableTarget]: `${base}\nuri: ${uri(this.ferret.port)}\nrestore: { uri: ${uri(closed)} }`,
        [NAMES.empty]: `${base}\nuri: ${uri(this.ferret.port)}\nrestore: { database: conformance_empty }`,
      },
      { MONGO_PASSWORD: this.ferret.password },
    );
    await this.seed();
  }

  async stop(): Promise<void> {
    await this.ferret?.stop();
  }

  async seed(): Promise<void> {
    const db = this.client.db(MONGO_DB);
    await db.dropDatabase();
    await db.collection('tyk_organisations').insertOne({ _id: oid(1), owner_name: 'Acme', owner_slug: 'acme', developer_quota: new Int32(500), created_at: new Date(Date.UTC(2026, 0, 2)) });
    await db.collection('tyk_apis').insertMany(
      Array.from({ length: 10 }, (_, i) => ({
        _id: oid(100 + i),
        api_definition: { api_id: `api${i}`, name: `API ${i}`, org_id: ORG, proxy: { listen_path: `/api-${i}/`, strip_listen_path: true }, tags: ['edge', `team-${i % 3}`], active: i % 4 !== 0 },
        sort_by: new Int32(i),
      })),
    );
    await db.collection('tyk_policies').insertMany(
      Array.from({ length: 5 }, (_, i) => ({ _id: oid(200 + i), id: `pol${i}`, name: `Policy ${i}`, org_id: ORG, rate: 100 + i, quota_max: new Long(i * 1000), access_rights: { [`api${i}`]: { versions: ['Default'] } } })),
    );
    await db.collection('portal_developers').insertMany(Array.from({ length: 6 }, (_, i) => ({ _id: oid(300 + i), email: `dev${i}@example.com`, org_id: ORG, fields: { company: `Co ${i}` } })));
    await db.collection('tyk_apis').createIndex({ 'api_definition.api_id': 1 }, { name: 'api_id_unique', unique: true });
    await db.collection('portal_developers').createIndex({ email: 1 }, { name: 'email_1' });
  }

  async damage(): Promise<void> {
    const db = this.client.db(MONGO_DB);
    await db.collection('tyk_apis').deleteMany({ sort_by: { $lt: 5 } });
    await db.collection('tyk_policies').updateMany({}, { $set: { rate: 1 } });
    await db.collection('tyk_organisations').insertOne({ _id: oid(2), owner_name: 'Intruder' });
    await db.collection('portal_developers').drop();
  }

  private where(c: Component): { uri: string; database: string } {
    const mc = c as MongoComponent;
    return { uri: (mc.restore.uri ?? mc.uri).reveal(), database: mc.restore.database ?? mc.database };
  }

  private async withClient<T>(c: Component, fn: (client: MongoClient, database: string) => Promise<T>): Promise<T> {
    const { uri, database } = this.where(c);
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    try {
      await client.connect();
      return await fn(client, database);
    } finally {
      await client.close();
    }
  }

  /** collection -> its documents (canonical Extended JSON, sorted by _id) and its indexes (name, key, unique). */
  async fingerprint(c: Component = this.component()): Promise<Record<string, unknown>> {
    return this.withClient(c, async (client, database) => {
      const db = client.db(database);
      const docs = await dumpDatabase(db);
      const out: Record<string, unknown> = {};
      for (const [name, documents] of Object.entries(docs)) {
        const indexes = (await db.collection(name).indexes()).map((i) => `${i.name} ${JSON.stringify(i.key)}${i.unique ? ' unique' : ''}`).sort();
        out[name] = { documents, indexes };
      }
      return out;
    });
  }

  async gone(c: Component): Promise<boolean> {
    return this.withClient(c, async (client, database) => {
      const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
      return !databases.some((d) => d.name === database);
    });
  }
}

// ---------------------------------------------------------------------------------------------- files

/** The gateway's tyk.conf secret: never in facts. */
const GATEWAY_SECRET = 'conformance-gateway-secret-5f1c';

/** A gateway config tree under a temp folder (tyk.conf, apps, policies, middleware, certs with a symlink, varied modes). */
class FilesFixture extends BaseFixture {
  readonly kind = 'files';
  readonly secrets = [GATEWAY_SECRET];
  private base!: string;
  private root!: string;

  async start(): Promise<void> {
    this.base = await mkdtemp(path.join(tmpdir(), 'tykdr-conf-files-'));
    this.root = path.join(this.base, 'opt', 'tyk-gateway');
    const blocker = path.join(this.base, 'not-a-folder');
    await writeFile(blocker, 'a regular file where the destination folder would be\n');
    await mkdir(path.join(this.base, 'empty'));
    const base = 'kind: files\nrole: gateway';
    this.cfg = parseComponents(
      {
        [NAMES.prod]: `${base}\nroots: [${this.root}]`,
        [NAMES.unreachableSource]: `${base}\nroots: [${path.join(this.base, 'missing', 'tyk-gateway')}]`,
        [NAMES.unreachableTarget]: `${base}\nroots: [${this.root}]\nrestore: { to: ${path.join(blocker, 'restored')} }`,
        [NAMES.empty]: `${base}\nroots: [${this.root}]\nrestore: { to: ${path.join(this.base, 'empty')} }`,
      },
      {},
    );
    await this.seed();
  }

  async stop(): Promise<void> {
    if (this.base) await rm(this.base, { recursive: true, force: true });
  }

  async seed(): Promise<void> {
    const r = this.root;
    await rm(r, { recursive: true, force: true });
    await mkdir(r, { recursive: true });
    await chmod(r, 0o755);
    await writeFile(path.join(r, 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: GATEWAY_SECRET, hash_keys: true, hash_key_function: 'murmur128', app_path: 'apps/' }, null, 2));
    await mkdir(path.join(r, 'apps'));
    for (let i = 1; i <= 3; i++) await writeFile(path.join(r, 'apps', `api${i}.json`), JSON.stringify({ api_id: `api${i}`, name: `API ${i}`, proxy: { listen_path: `/api${i}/` } }));
    await mkdir(path.join(r, 'policies'));
    await writeFile(path.join(r, 'policies', 'policies.json'), '{"pol1":{"rate":100,"per":60}}');
    await mkdir(path.join(r, 'middleware'));
    await writeFile(path.join(r, 'middleware', 'auth.js'), 'var auth = new TykJS.TykMiddleware.NewMiddleware({});\n');
    await chmod(path.join(r, 'middleware', 'auth.js'), 0o755);
    await mkdir(path.join(r, 'certs'));
    await chmod(path.join(r, 'certs'), 0o750);
    await writeFile(path.join(r, 'certs', 'server.pem'), '-----BEGIN PRIVATE KEY-----\nconformance\n-----END PRIVATE KEY-----\n');
    await chmod(path.join(r, 'certs', 'server.pem'), 0o600);
    await symlink('server.pem', path.join(r, 'certs', 'current.pem'));
  }

  async damage(): Promise<void> {
    const r = this.root;
    await rm(path.join(r, 'apps', 'api2.json'));
    await writeFile(path.join(r, 'policies', 'policies.json'), '{"pol1":{"rate":1,"per":1}}');
    await chmod(path.join(r, 'certs', 'server.pem'), 0o644);
    await rm(path.join(r, 'middleware'), { recursive: true });
    await rm(path.join(r, 'certs', 'current.pem'));
    await symlink('../tyk.conf', path.join(r, 'certs', 'current.pem'));
  }

  /** Where each root lands for `c`. */
  private destinations(c: Component): string[] {
    const fc = c as FilesComponent;
    return fc.roots.map((root) => destinationOf(path.relative('/', root), fc.restore.to));
  }

  /**
   * Per root: every entry's relative path -> type, mode and SHA-256 (files) or link target (symlinks).
   * Copies a restore keeps aside next to files it replaced ("<name>.tykdr-aside-<restoreId>", documented in
   * restore-files.ts) are left out: they are the overwritten data, kept on purpose, not the restored data.
   */
  async fingerprint(c: Component = this.component()): Promise<Record<string, Record<string, string>>> {
    const out: Record<string, Record<string, string>> = {};
    for (const [i, dest] of this.destinations(c).entries()) {
      const entries: Record<string, string> = {};
      const walk = async (dir: string) => {
        for (const name of (await readdir(dir)).sort()) {
          if (name.includes('.tykdr-aside-')) continue;
          const abs = path.join(dir, name);
          const rel = path.relative(dest, abs);
          const st = await lstat(abs);
          const mode = (st.mode & 0o7777).toString(8);
          if (st.isSymbolicLink()) entries[rel] = `link -> ${await readlink(abs)}`;
          else if (st.isDirectory()) {
            entries[rel] = `dir ${mode}`;
            await walk(abs);
          } else entries[rel] = `file ${mode} ${createHash('sha256').update(await readFile(abs)).digest('hex')}`;
        }
      };
      const st = await stat(dest).catch(() => null);
      if (st?.isDirectory()) {
        entries['.'] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(dest);
      }
      out[`root ${i}`] = entries;
    }
    return out;
  }

  async gone(c: Component): Promise<boolean> {
    const fc = c as FilesComponent;
    const where = fc.restore.to ?? this.destinations(c)[0]!;
    return (await stat(where).catch(() => null)) === null;
  }
}

/** The fixture of every component kind the conformance suites know; the suites fail for a registry kind missing here. */
export const KIND_FIXTURES: Record<string, () => KindFixture> = {
  redis: () => new RedisFixture(),
  postgres: () => new PostgresFixture(),
  mongo: () => new MongoFixture(),
  files: () => new FilesFixture(),
};

// ------------------------------------------------------------------------------------------- backup

/** One artifact of a backup, as the engine would record it, with its plaintext staged in a file. */
export interface StagedArtifact {
  source: Source;
  facts: SourceFacts;
  entry: ManifestComponent;
  /** The plaintext bytes, exactly as the source streamed them. */
  file: string;
  bytes: number;
}

/**
 * Backs a component up the way runBackup does, without the store: every source of the component is checked,
 * opened, its stream written to a plaintext file in `dir`, then finished; the manifest entry is built from the
 * facts as runBackup builds it (compression and encryption fields describe a stored object that does not exist).
 */
export async function backupToFiles(component: Component, config: Config, dir: string): Promise<StagedArtifact[]> {
  const sources = await openSources(component);
  const out: StagedArtifact[] = [];
  for (const source of sources) {
    await source.check();
    const started = new Date();
    const artifact = await source.open();
    const file = path.join(dir, `${source.component}.${artifact.format}`);
    const hash = createHash('sha256');
    let bytes = 0;
    await pipeline(
      artifact.stream,
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          hash.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(file),
    );
    const facts = await artifact.finish();
    const objective = config.tiers[component.tier];
    const entry: ManifestComponent = {
      kind: source.kind,
      ...(source.configName ? { config_component: source.configName } : {}),
      tier: component.tier,
      objective: { rto_seconds: objective.rtoMs / 1000, rpo_seconds: objective.rpoMs / 1000 },
      consistent_at: artifact.consistentAt.toISOString(),
      started_at: started.toISOString(),
      duration_ms: Date.now() - started.getTime(),
      artifact: {
        name: `${source.component}.${artifact.format}.zst.age`,
        format: artifact.format,
        compression: 'zstd',
        encryption: 'age',
        plaintext_bytes: bytes,
        stored_bytes: bytes,
        sha256: hash.digest('hex'),
      },
      source: facts.source,
    };
    out.push({ source, facts, entry, file, bytes });
  }
  return out;
}

/** A private copy of a staged file (a target may move or consume it). */
export async function stagedCopy(file: string, dir: string): Promise<string> {
  const to = path.join(dir, `${path.basename(file)}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  await copyFile(file, to);
  return to;
}
