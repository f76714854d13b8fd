import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startMinio, type Minio } from '../helpers/minio.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { GATEWAY_SECRET, makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const REDIS_PASSWORD = 'redis-pw-never-printed';

let redis: RedisServer;
let minio: Minio;
let ws: Workspace;
let tree: { root: string };
let totalKeys: number;

const components = () => `
components:
  redis:
    kind: redis
    host: 127.0.0.1
    port: ${redis.port}
    password: \${TEST_REDIS_PASSWORD}
  config:
    kind: files
    roots: [${tree.root}]
    include: [tyk.conf, "apps/**", "policies/**", "certs/**"]
    exclude: ["**/*.log"]
`;

beforeAll(async () => {
  [redis, minio, ws, tree] = await Promise.all([startRedis({ password: REDIS_PASSWORD }), startMinio(), makeWorkspace(), makeConfigTree()]);
  totalKeys = (await seedTykRedis(redis.port, { password: REDIS_PASSWORD, sessions: 200 })).keys;
  await minio.createBucket('tyk-backups');
  await ws.writeConfig(
    'local.yaml',
    `store: { kind: local, path: ./store }\nencryption: { recipients: [${ws.recipient}] }\n${components()}`,
  );
  await ws.writeConfig(
    's3.yaml',
    `store:
  kind: s3
  bucket: tyk-backups
  prefix: prod/eu
  endpoint: ${minio.endpoint}
  forcePathStyle: true
  accessKeyId: \${TEST_S3_KEY}
  secretAccessKey: \${TEST_S3_SECRET}
  partSizeMiB: 5
  serverSideEncryption: AES256
  storageClass: REDUCED_REDUNDANCY
encryption: { recipients: [${ws.recipient}] }
compression: { algorithm: gzip, level: 6 }
${components()}`,
  );
});

afterAll(async () => {
  await Promise.all([redis?.stop(), minio?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

const env = () => ({ TEST_REDIS_PASSWORD: REDIS_PASSWORD, TEST_S3_KEY: minio.accessKeyId, TEST_S3_SECRET: minio.secretAccessKey });

function expectNoSecrets(...texts: string[]) {
  for (const t of texts) {
    expect(t).not.toContain(REDIS_PASSWORD);
    expect(t).not.toContain(GATEWAY_SECRET);
    expect(t).not.toContain(minio.secretAccessKey);
    expect(t).not.toContain('AGE-SECRET-KEY');
  }
}

describe('tykdr backup to a local folder', () => {
  let manifest: any;
  let id: string;

  beforeAll(async () => {
    const res = await runCli(['backup', '--config', path.join(ws.dir, 'local.yaml'), '--json'], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    id = out.id;
    manifest = out.manifest;
    expectNoSecrets(res.stdout, res.stderr);
  });

  it('writes one object per component and the manifest, all readable back', async () => {
    const dir = path.join(ws.storeDir, 'snapshots', id);
    expect((await readdir(dir)).sort()).toEqual(['config.tar.zst.age', 'manifest.json', 'redis.rdb.zst.age']);
    for (const c of ['redis', 'config']) {
      const a = manifest.components[c].artifact;
      const bytes = await readFile(path.join(dir, a.name));
      expect(bytes.length).toBe(a.stored_bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(a.sha256);
      expect(bytes.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    }
    const onDisk = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    expect(onDisk).toEqual(manifest);
    expectNoSecrets(JSON.stringify(onDisk));
  });

  it('records Redis facts: version, RDB version, keys per database and per Tyk class', () => {
    const r = manifest.components.redis;
    expect(r.kind).toBe('redis');
    expect(r.tier).toBe('critical');
    expect(r.objective).toEqual({ rto_seconds: 900, rpo_seconds: 300 });
    expect(r.source.redis_version).toMatch(/^\d+\.\d+/);
    expect(r.source.rdb_version).toBeGreaterThanOrEqual(9);
    expect(r.source.rdb_checksum).toBe('ok');
    expect(r.source.total_keys).toBe(totalKeys);
    expect(r.source.databases['0'].keys).toBe(totalKeys);
    const classes = r.source.key_classes['0'];
    expect(classes.must).toBe(201 + 1 + 3 + 2); // sessions + canary, orgkey, 3 oauth client keys, 2 cert keys
    expect(classes.should).toBe(3 + 2);
    expect(classes.quota).toBe(1);
    expect(classes.analytics).toBe(1);
    expect(classes.mdcb).toBe(1);
    expect(classes.other).toBe(1);
    expect(Date.parse(r.consistent_at)).toBeLessThanOrEqual(Date.parse(manifest.completed_at));
    expect(r.artifact.plaintext_bytes).toBeGreaterThan(1000);
  });

  it('records the config tarball and Tyk facts without the secret', () => {
    const c = manifest.components.config;
    expect(c.source.files).toBe(4);
    expect(c.source.symlinks).toBe(1);
    expect(manifest.tyk.hash_keys).toBe(true);
    expect(manifest.tyk.hash_key_function).toBe('murmur128');
    expect(manifest.tyk.secret_fingerprint).toMatch(/^scrypt:16384:/);
    expect(manifest.encryption.recipients).toHaveLength(1);
    expect(manifest.encryption.recipients[0].fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
  });

  it('lists snapshots newest first with completeness, and shows one', async () => {
    const second = await runCli(['backup', '-c', path.join(ws.dir, 'local.yaml'), '--component', 'config', '--json'], { env: env() });
    expect(second.code, second.stderr).toBe(0);
    const id2 = JSON.parse(second.stdout).id;
    // Listing needs only the store: the Redis password's \${TEST_REDIS_PASSWORD} is deliberately unset here.
    const list = await runCli(['snapshots', '-c', path.join(ws.dir, 'local.yaml'), '--json']);
    expect(list.code, list.stdout + list.stderr).toBe(0);
    const snaps = JSON.parse(list.stdout).snapshots;
    expect(snaps.map((s: any) => s.id).slice(0, 2)).toEqual([id2, id]);
    expect(snaps[0]).toMatchObject({ complete: true, components: ['config'] });
    expect(snaps[1]).toMatchObject({ complete: true, components: ['redis', 'config'] });
    const text = await runCli(['snapshots', '-c', path.join(ws.dir, 'local.yaml')]);
    expect(text.stdout).toMatch(/ID\s+AGE\s+STATUS\s+DATA\s+STORED\s+COMPONENTS/);
    // The sizes the backup summary names: data before compression, stored as compressed and encrypted objects.
    const artifacts = Object.values(manifest.components).map((c: any) => c.artifact);
    expect(snaps[1]).toMatchObject({
      data_bytes: artifacts.reduce((n: number, a: any) => n + a.plaintext_bytes, 0),
      artifact_bytes: artifacts.reduce((n: number, a: any) => n + a.stored_bytes, 0),
    });
    expect(snaps[1].stored_bytes).toBeGreaterThan(snaps[1].artifact_bytes); // the manifest too
    expect(text.stdout).toContain(`${id2}`);
    const show = await runCli(['snapshot', 'show', id, '-c', path.join(ws.dir, 'local.yaml'), '--json']);
    expect(JSON.parse(show.stdout)).toEqual(manifest);
    const latest = await runCli(['snapshot', 'show', 'latest', '-c', path.join(ws.dir, 'local.yaml')]);
    expect(latest.stdout).toContain(`Snapshot ${id2}`);
    expect(latest.stdout).toContain('config.tar.zst.age');
    // For people: Unix times as dates, tar paths as the absolute paths they were, the two sizes named.
    const text1 = await runCli(['snapshot', 'show', id, '-c', path.join(ws.dir, 'local.yaml')]);
    expect(text1.stdout).toMatch(/^ {4}rdb_ctime {5}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z \(\d+\)$/m);
    expect(text1.stdout).toMatch(/^ {4}object {8}redis\.rdb\.zst\.age: data [\d.]+ \S+, stored [\d.]+ \S+ \(zstd-compressed, age-encrypted\)$/m);
    expect(manifest.tyk.file).not.toMatch(/^\//);
    expect(text1.stdout).toContain(`(/${manifest.tyk.file})`);
  });

  it('writes the manifest last', async () => {
    const dir = path.join(ws.storeDir, 'snapshots', id);
    const m = await stat(path.join(dir, 'manifest.json'));
    for (const n of ['redis.rdb.zst.age', 'config.tar.zst.age']) {
      expect((await stat(path.join(dir, n))).mtimeMs).toBeLessThanOrEqual(m.mtimeMs);
    }
  });
});

describe('tykdr backup to S3 (MinIO)', () => {
  it('uploads the objects and manifest under the prefix, gzip-compressed', async () => {
    // The fixture's short-TTL keys (30 s, 60 s) may have expired since it was seeded (on a busy machine, or before
    // it): the snapshot holds the keys of one moment between these two counts.
    const keysBefore = Number(await redis.cli('DBSIZE'));
    const res = await runCli(['backup', '-c', path.join(ws.dir, 's3.yaml'), '--json'], { env: env() });
    const keysAfter = Number(await redis.cli('DBSIZE'));
    expect(res.code, res.stderr).toBe(0);
    const { id, manifest, location } = JSON.parse(res.stdout);
    expect(location).toBe('s3://tyk-backups/prod/eu/');
    expect(manifest.components.redis.artifact.name).toBe('redis.rdb.gz.age');
    expect(keysBefore).toBeGreaterThanOrEqual(totalKeys - 2);
    expect(manifest.components.redis.source.total_keys).toBeLessThanOrEqual(keysBefore);
    expect(manifest.components.redis.source.total_keys).toBeGreaterThanOrEqual(keysAfter);
    expectNoSecrets(res.stdout, res.stderr);
    const list = await runCli(['snapshots', '-c', path.join(ws.dir, 's3.yaml'), '--json'], { env: env() });
    const snaps = JSON.parse(list.stdout).snapshots;
    expect(snaps[0]).toMatchObject({ id, complete: true, objects: 3 });
    const head = await minio.client.send(
      new HeadObjectCommand({ Bucket: 'tyk-backups', Key: `prod/eu/snapshots/${id}/redis.rdb.gz.age` }),
    );
    expect(head.ServerSideEncryption).toBe('AES256');
    // The bytes in the bucket are exactly the bytes the manifest hashed.
    const obj = await minio.client.send(new GetObjectCommand({ Bucket: 'tyk-backups', Key: `prod/eu/snapshots/${id}/redis.rdb.gz.age` }));
    const body = Buffer.from(await obj.Body!.transformToByteArray());
    expect(body.length).toBe(manifest.components.redis.artifact.stored_bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(manifest.components.redis.artifact.sha256);
    expect(head.StorageClass).toBe('REDUCED_REDUNDANCY');
  });
});
