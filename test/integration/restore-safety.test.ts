import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreFiles } from '../../src/backends/files/target/restore-files.js';
import { TykdrError } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const exec = promisify(execFile);

describe('config-file restore refuses unsafe tarballs before writing anything', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-unsafe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function refused(tarArgs: string[], roots: string[]) {
    const tarFile = path.join(dir, `t-${Math.random().toString(36).slice(2)}.tar`);
    await exec('tar', ['-cf', tarFile, ...tarArgs]);
    const to = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
    const err = await restoreFiles({
      component: { name: 'config', roots } as never,
      manifest: { source: { roots, files: 1 } } as never,
      tarFile,
      to,
      restoreId: 'r1',
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).message).toMatch(/unsafe to extract/);
    await expect(readdir(to)).rejects.toThrow(/ENOENT/); // nothing written
    return err as TykdrError;
  }

  it('an entry outside the recorded roots', async () => {
    await writeFile(path.join(dir, 'outside.txt'), 'x');
    const e = await refused(['-C', '/', path.relative('/', path.join(dir, 'outside.txt'))], ['/opt/tyk-gateway']);
    expect(e.message).toContain('is outside the snapshot');
  });

  it('a path that climbs out with ..', async () => {
    await writeFile(path.join(dir, 'x.txt'), 'x');
    const e = await refused(['-C', dir, '--transform', 's,^,opt/tyk-gateway/../../,', 'x.txt'], ['/opt/tyk-gateway']);
    expect(e.message).toContain('outside the snapshot');
  });

  it('a symlink pointing outside the roots', async () => {
    const root = path.join(dir, 'opt', 'tyk-gateway');
    await exec('mkdir', ['-p', root]);
    await exec('ln', ['-sf', '/etc/shadow', path.join(root, 'evil.pem')]);
    const e = await refused(['-C', '/', path.relative('/', path.join(root, 'evil.pem'))], [root]);
    expect(e.message).toContain('points outside the roots');
  });
});

describe('the gateway secret is compared before Redis is restored', () => {
  let redis: RedisServer;
  let ws: Workspace;
  let tree: { root: string };
  let configFile: string;

  beforeAll(async () => {
    [redis, ws, tree] = await Promise.all([startRedis(), makeWorkspace(), makeConfigTree()]);
    await seedTykRedis(redis.port, { sessions: 10 });
    configFile = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${redis.port} }
  config: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
restore: { reportDir: ./reports }
`,
    );
    expect((await runCli(['backup', '-c', configFile])).code).toBe(0);
    // The gateway is now configured with another secret than the snapshot's.
    await writeFile(path.join(tree.root, 'tyk.conf'), JSON.stringify({ secret: 'a-different-secret' }));
  });

  afterAll(async () => {
    await Promise.all([redis?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
  });

  it('warns loudly when only Redis is restored under a different secret', async () => {
    const res = await runCli(['restore', '--plan', 'redis', '-c', configFile, '--yes', '--json']);
    expect(res.code, res.stdout).toBe(0);
    const warnings: string[] = JSON.parse(res.stdout).report.warnings;
    const w = warnings.find((x) => x.startsWith('GATEWAY SECRET MISMATCH'));
    expect(w).toBeDefined();
    expect(w).toContain('UNUSABLE');
    expect(res.stdout).not.toContain('a-different-secret');
    const text = await runCli(['restore', '--plan', 'redis', '-c', configFile, '--yes']);
    expect(text.stderr + text.stdout).toContain('GATEWAY SECRET MISMATCH');
  });

  it('says the full plan puts the snapshot tyk.conf back', async () => {
    const res = await runCli(['restore', '--plan', 'full', '-c', configFile, '--yes', '--json']);
    expect(res.code, res.stdout).toBe(0);
    const warnings: string[] = JSON.parse(res.stdout).report.warnings;
    expect(warnings.some((x) => x.includes("this plan restores the snapshot's tyk.conf"))).toBe(true);
    expect(warnings.some((x) => x.startsWith('GATEWAY SECRET MISMATCH'))).toBe(false);
  });
});
