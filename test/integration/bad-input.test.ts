import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { fingerprintTree, makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Malformed inputs as a new user types them: config, plan, flags, ids, keys, paths, servers. Each row
 * gives the exit code (src/core/errors.ts), a fragment of the message, and is checked for three more
 * things: no secret in the output, no stack trace, and nothing changed (the store, the Redis data and the
 * config tree are as before). Grow it with every bad input found to fall short.
 */

const REDIS_PW = 'redis-pw-SECRET-7c1e';
const TYK_SECRET = 'tyk-conf-SECRET-3b9a';
const SECRETS = [REDIS_PW, TYK_SECRET];

let ws: Workspace;
let redis: RedisServer;
let tree: string;
let snapshotId: string;
let closedPort: number;

/** The good config; rows change it with `config` (a function of the good text). */
const goodConfig = () => `version: 1
store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    host: 127.0.0.1
    port: ${redis.port}
    password: \${BAD_PW}
  config:
    kind: files
    roots: [${tree}]
`;

interface Row {
  name: string;
  args: (cfg: string) => string[];
  config?: (good: string) => string;
  env?: NodeJS.ProcessEnv;
  code: number;
  fragment: string | RegExp;
}

const rows: Row[] = [
  // config
  {
    name: 'config: an unknown key beside a password from the environment',
    config: (g) => g.replace('    password: ${BAD_PW}\n', '    password: ${BAD_PW}\n    bogus: 1\n'),
    args: (c) => ['backup', '-c', c],
    code: 2,
    fragment: /line 10: unknown key "bogus" in components\.redis$/m,
  },
  {
    name: 'config: an unknown top-level key',
    config: (g) => `${g}colour: blue\n`,
    args: (c) => ['snapshots', '-c', c],
    code: 2,
    fragment: /line 13: unknown key "colour" at the top level$/m,
  },
  { name: 'config: YAML syntax error', config: (g) => `${g}  - [unclosed\n`, args: (c) => ['backup', '-c', c], code: 2, fragment: 'YAML syntax error' },
  {
    name: 'config: a port read from the environment that is not a number (value hidden)',
    config: (g) => g.replace(`port: ${redis.port}`, 'port: ${BAD_PW}'),
    args: (c) => ['backup', '-c', c],
    code: 2,
    fragment: 'components.redis.port (value hidden)',
  },
  { name: 'config: an unset variable', config: (g) => g.replace('${BAD_PW}', '${NOT_SET_ANYWHERE}'), args: (c) => ['backup', '-c', c], code: 2, fragment: '${NOT_SET_ANYWHERE}, which is not set' },
  { name: 'config: the file does not exist', args: () => ['backup', '-c', 'no-such-tykdr.yaml'], code: 2, fragment: 'cannot read config file' },
  { name: 'config: a duration that is not one', config: (g) => `${g}tiers: { critical: { rto: 15m, rpo: 5x } }\n`, args: (c) => ['backup', '-c', c], code: 2, fragment: 'tiers.critical.rpo "5x"' },
  {
    name: 'config: a duration of 99999999999d',
    config: (g) => `${g}tiers: { critical: { rto: 99999999999d, rpo: 5m } }\n`,
    args: (c) => ['backup', '-c', c],
    code: 2,
    fragment: 'longer than 100 years',
  },
  { name: 'config: an encryption recipient that is not one', config: (g) => g.replace(ws.recipient, 'age1notakey'), args: (c) => ['backup', '-c', c], code: 2, fragment: 'age1notakey' },
  // plans
  { name: 'plan: an unknown plan name', args: (c) => ['restore', '-c', c, '--plan', 'nosuchplan', '--dry-run'], code: 2, fragment: 'there is no built-in plan "nosuchplan"' },
  { name: 'plan: validate a file that does not exist', args: () => ['plan', 'validate', 'no-such-plan.yaml'], code: 2, fragment: 'no-such-plan.yaml' },
  // flags
  { name: 'flags: --before 99999999999d', args: (c) => ['restore', '-c', c, '--before', '99999999999d', '--dry-run'], code: 2, fragment: '--before "99999999999d" reaches back before 1970' },
  { name: 'flags: --before that is no time', args: (c) => ['restore', '-c', c, '--before', 'yesterday', '--dry-run'], code: 2, fragment: 'is neither a time nor a duration' },
  { name: 'flags: --snapshot latest with --before', args: (c) => ['restore', '-c', c, '--snapshot', 'latest', '--before', '1h'], code: 2, fragment: 'cannot also be provided when using --snapshot' },
  { name: 'flags: daemon --grace -1', args: (c) => ['daemon', '-c', c, '--grace', '-1'], code: 2, fragment: '--grace: Expected an integer greater than or equal to 0 but received: -1' },
  { name: 'flags: daemon --grace beyond the timer limit', args: (c) => ['daemon', '-c', c, '--grace', '99999999'], code: 2, fragment: '--grace 99999999 is longer than the daemon can wait' },
  { name: 'flags: daemon --json --grace -1 (the error as JSON)', args: (c) => ['daemon', '-c', c, '--json', '--grace', '-1'], code: 2, fragment: '"exit_code": 2' },
  { name: 'flags: TYKDR_GRACE that is not a duration', args: (c) => ['backup', '-c', c], env: { TYKDR_GRACE: 'soon' }, code: 2, fragment: 'TYKDR_GRACE "soon"' },
  { name: 'flags: verify --sample 150', args: (c) => ['verify', '-c', c, '--sample', '150'], code: 2, fragment: '--sample "150" is not a percentage' },
  { name: 'flags: an unknown flag', args: (c) => ['backup', '-c', c, '--frobnicate'], code: 2, fragment: '--frobnicate' },
  { name: 'flags: restore --target without a port', args: (c) => ['restore', '-c', c, '--target', 'redis=somehost', '--dry-run'], code: 2, fragment: 'redis=somehost' },
  // ids
  { name: 'ids: snapshot show of an unknown id', args: (c) => ['snapshot', 'show', '20990101T000000Z-abcdef', '-c', c], code: 2, fragment: '20990101T000000Z-abcdef' },
  { name: 'ids: snapshot show of a path', args: (c) => ['snapshot', 'show', '../../etc', '-c', c], code: 2, fragment: '../../etc' },
  { name: 'ids: verify of an unknown id', args: (c) => ['verify', 'nope', '-c', c], code: 2, fragment: 'nope' },
  { name: 'ids: restore --snapshot of an unknown id', args: (c) => ['restore', '-c', c, '--snapshot', '20990101T000000Z-abcdef', '--dry-run'], code: 2, fragment: '20990101T000000Z-abcdef' },
  // keys
  { name: 'keys: --identity that does not exist', args: (c) => ['verify', '-c', c, '--identity', 'no-such-identity.txt'], code: 2, fragment: 'no-such-identity.txt' },
  { name: 'keys: --identity of another key', args: (c) => ['verify', '-c', c, '--identity', 'other-identity.txt'], code: 5, fragment: /identit/ },
  { name: 'keys: init --recipient that is no age recipient', args: () => ['init', '--config', 'init-bad.yaml', '--recipient', 'age1notakey'], code: 2, fragment: 'age1notakey' },
  { name: 'keys: report verify --key that is no key', args: () => ['report', 'verify', 'no-such-report.json', '--key', 'garbage'], code: 2, fragment: /garbage|no-such-report/ },
  // paths
  { name: 'paths: a mistyped store path (snapshots)', config: (g) => g.replace('path: ./store', 'path: ./stor'), args: (c) => ['snapshots', '-c', c], code: 4, fragment: /local store \S+\/stor does not exist/ },
  { name: 'paths: a mistyped store path (restore)', config: (g) => g.replace('path: ./store', 'path: ./stor'), args: (c) => ['restore', '-c', c, '--dry-run'], code: 4, fragment: /local store \S+\/stor does not exist/ },
  { name: 'paths: a store under /proc', config: (g) => g.replace('path: ./store', 'path: /proc/tykdr-store'), args: (c) => ['backup', '-c', c], code: 4, fragment: 'local store /proc/tykdr-store is not a writable folder' },
  { name: 'paths: a files root that does not exist', config: (g) => g.replace(`roots: [${tree}]`, 'roots: [/no/such/tyk-gateway]'), args: (c) => ['backup', '-c', c], code: 3, fragment: '/no/such/tyk-gateway does not exist' },
  { name: 'paths: a files root that is a symlink loop', config: (g) => g.replace(`roots: [${tree}]`, 'roots: [./loop-a]'), args: (c) => ['backup', '-c', c], code: 3, fragment: 'loop-a is a symlink loop' },
  { name: 'paths: a files root that is a file', config: (g) => g.replace(`roots: [${tree}]`, 'roots: [./identity.txt]'), args: (c) => ['backup', '-c', c], code: 2, fragment: 'identity.txt is not a folder' },
  // servers
  { name: 'servers: nothing listens on the Redis port', config: (g) => g.replace(`port: ${redis.port}`, `port: ${closedPort}`), args: (c) => ['backup', '-c', c], code: 3, fragment: /Redis at 127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\)/ },
  { name: 'servers: a wrong Redis password', env: { BAD_PW: 'wrong-password' }, args: (c) => ['backup', '-c', c], code: 3, fragment: /auth|password/i },
  {
    name: 'servers: a restore target where nothing listens',
    args: (c) => ['restore', '-c', c, '--plan', 'redis', '--target', `redis=127.0.0.1:${closedPort}`, '--yes'],
    code: 6,
    fragment: /components\.redis\.restore\.target: Redis at 127\.0\.0\.1:\d+ is unreachable/,
  },
];

/** The Redis data as sorted key=value lines (the seed holds strings only). */
async function redisState(): Promise<string> {
  const r = new Redis({ port: redis.port, password: REDIS_PW, lazyConnect: true });
  await r.connect();
  try {
    const keys = (await r.keys('*')).sort();
    const values = keys.length ? await r.mget(...keys) : [];
    return keys.map((k, i) => `${k}=${values[i]}`).join('\n');
  } finally {
    r.disconnect();
  }
}

/** Restore and drill reports are evidence, written for failed runs too: the store's snapshots are what must not change. */
const snapshotsOnly = (fp: Record<string, string>) => Object.fromEntries(Object.entries(fp).filter(([k]) => !k.startsWith('reports/')));

const state = async () => ({
  store: snapshotsOnly(await fingerprintTree(ws.storeDir)),
  initWrote: existsSync(path.join(ws.dir, 'init-bad.yaml')),
  tree: await fingerprintTree(tree),
  redis: createHash('sha256').update(await redisState()).digest('hex'),
});

beforeAll(async () => {
  [ws, redis, closedPort] = await Promise.all([makeWorkspace(), startRedis({ password: REDIS_PW }), freePort()]);
  tree = await mkdtemp(path.join(tmpdir(), 'tykdr-bad-input-tree-'));
  await mkdir(path.join(tree, 'apps'));
  await writeFile(path.join(tree, 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: TYK_SECRET }));
  await writeFile(path.join(tree, 'apps', 'api1.json'), '{"api_id":"api1"}');
  await symlink('loop-b', path.join(ws.dir, 'loop-a'));
  await symlink('loop-a', path.join(ws.dir, 'loop-b'));
  const r = new Redis({ port: redis.port, password: REDIS_PW, lazyConnect: true });
  await r.connect();
  for (let i = 0; i < 20; i++) await r.set(`apikey-${i}`, `{"org_id":"o","i":${i}}`);
  r.disconnect();
  const other = await runCli(['key', 'generate', '--output', path.join(ws.dir, 'other-identity.txt')]);
  expect(other.code, other.stderr).toBe(0);
  const good = await ws.writeConfig('good.yaml', goodConfig());
  const res = await runCli(['backup', '-c', good, '--json'], { cwd: ws.dir, env: { BAD_PW: REDIS_PW } });
  expect(res.code, res.stderr).toBe(0);
  snapshotId = JSON.parse(res.stdout).id;
});

afterAll(async () => {
  await Promise.all([ws?.cleanup(), redis?.stop(), tree && rm(tree, { recursive: true, force: true })]);
});

describe('every bad input answered: exit code, message, no secret, nothing changed', () => {
  it('the good config works (the rows below differ from it in one thing)', async () => {
    const res = await runCli(['snapshots', '-c', 'good.yaml', '--json'], { cwd: ws.dir, env: { BAD_PW: REDIS_PW } });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).snapshots.map((s: { id: string }) => s.id)).toEqual([snapshotId]);
  });

  it.each(rows.map((r) => [r.name, r] as const))('%s', async (name, row) => {
    const file = row.config ? await ws.writeConfig(`${name.replace(/\W+/g, '-')}.yaml`, row.config(goodConfig())) : path.join(ws.dir, 'good.yaml');
    const before = await state();
    const res = await runCli(row.args(file), { cwd: ws.dir, env: { BAD_PW: REDIS_PW, ...row.env } });
    const out = `${res.stdout}${res.stderr}`;
    if (process.env.TYKDR_SHOW_BAD_INPUT) process.stderr.write(`--- ${name} (exit ${res.code})\n${out}\n`);
    expect(res.code, out).toBe(row.code);
    if (typeof row.fragment === 'string') expect(out).toContain(row.fragment);
    else expect(out).toMatch(row.fragment);
    for (const s of SECRETS) expect(out, `${name} printed a secret`).not.toContain(s);
    expect(out).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // no stack trace without --debug
    expect(out).not.toContain('This is a bug in tykdr');
    expect(await state(), 'nothing changed').toEqual(before);
  });
});
