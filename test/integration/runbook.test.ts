import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const exec = promisify(execFile);

/** The ```sh runbook blocks of docs/FORMAT.md, in order: the test runs exactly what the docs say. */
function runbookBlocks(): string[] {
  const doc = readFileSync(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8');
  return [...doc.matchAll(/```sh runbook\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

async function dumpKeyspace(port: number): Promise<Map<string, { value: string; ttl: number }>> {
  const r = new Redis({ port, lazyConnect: true });
  await r.connect();
  const out = new Map<string, { value: string; ttl: number }>();
  for (const key of await r.keys('*')) {
    const type = await r.type(key);
    const value =
      type === 'string' ? await r.get(key)
      : type === 'list' ? JSON.stringify(await r.lrange(key, 0, -1))
      : type === 'set' ? JSON.stringify((await r.smembers(key)).sort())
      : type === 'zset' ? JSON.stringify(await r.zrange(key, 0, -1, 'WITHSCORES'))
      : type;
    out.set(key, { value: value ?? '', ttl: await r.pttl(key) });
  }
  r.disconnect();
  return out;
}

let redis: RedisServer;
let ws: Workspace;
let tree: { root: string };
let work: string;
let snap: string;
let port: number;

beforeAll(async () => {
  [redis, ws, tree] = await Promise.all([startRedis(), makeWorkspace(), makeConfigTree()]);
  await seedTykRedis(redis.port, { sessions: 500 });
  const f = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}] }
components:
  cache: { kind: redis, port: ${redis.port} }
  gwconf: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
`,
  );
  const res = await runCli(['backup', '-c', f, '--json']);
  expect(res.code, res.stderr).toBe(0);
  snap = path.join(ws.storeDir, 'snapshots', JSON.parse(res.stdout).id);
  work = await mkdtemp(path.join(tmpdir(), 'tykdr-runbook-'));
  port = await freePort();
});

afterAll(async () => {
  await exec('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => undefined);
  await Promise.all([redis?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true }), work && rm(work, { recursive: true, force: true })]);
});

describe('docs/FORMAT.md break-glass runbook, with the Debian age and zstd binaries', () => {
  const blocks = runbookBlocks();
  const run = (i: number) =>
    exec('bash', ['-euo', 'pipefail', '-c', blocks[i]!], {
      // Components named otherwise than the template's redis and config: the runbook must use the names.
      env: { ...process.env, SNAP: snap, IDENTITY: ws.identityFile, WORK: work, PORT: String(port), REDIS_COMPONENT: 'cache', FILES_COMPONENT: 'gwconf' },
    });

  it('has the four documented steps', () => {
    expect(blocks).toHaveLength(4);
  });

  it('step 1: the completeness and checksum check passes', async () => {
    const { stdout } = await run(0);
    expect(stdout).toContain('cache.rdb.zst.age: ok');
    expect(stdout).toContain('gwconf.tar.zst.age: ok');
  });

  it('step 2: the RDB decrypts, checks and loads into redis-server with every key, value and TTL', async () => {
    const { stdout } = await run(1);
    const manifest = JSON.parse(await readFile(path.join(snap, 'manifest.json'), 'utf8'));
    expect(stdout).toContain(`db0:keys=${manifest.components.cache.source.databases['0'].keys},`);
    const [orig, restored] = await Promise.all([dumpKeyspace(redis.port), dumpKeyspace(port)]);
    expect([...restored.keys()].sort()).toEqual([...orig.keys()].sort());
    for (const [k, v] of orig) {
      const r = restored.get(k)!;
      expect(r.value, k).toBe(v.value);
      if (v.ttl > 0) expect(Math.abs(r.ttl - v.ttl), k).toBeLessThan(60_000);
      else expect(r.ttl, k).toBe(v.ttl);
    }
  });

  it('step 3: the config tarball extracts with identical contents, modes, mtimes and symlinks', async () => {
    await run(2);
    const out = path.join(work, 'config', path.relative('/', tree.root));
    for (const f of ['tyk.conf', 'apps/api1.json', 'policies/policies.json', 'certs/server.pem']) {
      expect(await readFile(path.join(out, f), 'utf8'), f).toBe(await readFile(path.join(tree.root, f), 'utf8'));
      const [a, b] = await Promise.all([lstat(path.join(tree.root, f)), lstat(path.join(out, f))]);
      expect(b.mode, f).toBe(a.mode);
      expect(Math.floor(b.mtimeMs / 1000), f).toBe(Math.floor(a.mtimeMs / 1000));
    }
    expect(await readlink(path.join(out, 'certs/current.pem'))).toBe('server.pem');
    await expect(lstat(path.join(out, 'gateway.log'))).rejects.toThrow(/ENOENT/);
  });

  it('step 4: stops the scratch Redis', async () => {
    await run(3);
    await expect(exec('redis-cli', ['-p', String(port), 'ping'])).rejects.toThrow();
  });
});

describe('docs/FORMAT.md lists every tool its runbook blocks call', () => {
  it('each command of every ```sh runbook* block is in the tools table', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## Restoring by hand'), doc.indexOf('Set these for the commands below'));
    const builtins = new Set(['for', 'do', 'done', 'if', 'then', 'fi', '[', '{', '}', 'echo', 'exit', 'break', 'true', 'printf', 'test', '_']);
    const used = new Set<string>();
    for (const m of doc.matchAll(/```sh runbook[\w-]*\n([\s\S]*?)```/g)) {
      const lines = m[1]!.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!.replace(/"[^"]*"|'[^']*'/g, '""').replace(/#.*$/, '');
        const heredoc = /<<'(\w+)'/.exec(lines[i]!);
        for (const part of line.split(/\||&&|;|\$\(|\bdo\b|\bthen\b|\|\|/)) {
          const word = part.trim().replace(/^\{\s*/, '').split(/\s+/)[0] ?? '';
          if (/^[a-z][\w.-]*$/.test(word) && !builtins.has(word) && !/^\w+=/.test(part.trim())) used.add(word);
        }
        if (heredoc) while (i + 1 < lines.length && lines[i + 1]!.trim() !== heredoc[1]) i++;
      }
    }
    expect(used.size).toBeGreaterThan(8);
    for (const tool of used) expect(table, `${tool} is used by a runbook block but not listed`).toContain(`\`${tool}\``);
  });
});
