import { execFile } from 'node:child_process';
import { chmod, cp, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { repoRoot, toolsBin } from '../helpers/paths.js';

/** A public key whose identity was not kept: `snapshots` needs a recipient configured, and encrypts nothing. */
const RECIPIENT = 'age1wcz72t7fxp9ks3ke82rtj97gqt00yxqvd7cputyvly52kqa20atstkzp3x';

const exec = promisify(execFile);

/** Runs bin/run.js of another install root, as runCli does for the checkout. */
async function runIn(root: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [path.join(root, 'bin/run.js'), ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('start-up', () => {
  it('NODE_ENV=development or test: the built CLI runs, nothing tries TypeScript sources, no warning on a first run', async () => {
    for (const NODE_ENV of ['development', 'test']) {
      const cache = await mkdtemp(path.join(tmpdir(), 'tykdr-cache-env-'));
      try {
        for (const run of [1, 2]) {
          const r = await runCli(['plan', 'show', 'full', '--json'], { env: { NODE_ENV, TYKDR_CACHE_DIR: cache } });
          expect(r.code, r.stderr).toBe(0);
          expect(r.stderr, `NODE_ENV=${NODE_ENV}, run ${run}`).toBe('');
        }
      } finally {
        await rm(cache, { recursive: true, force: true });
      }
    }
  });

  it('--version prints what oclif prints, without loading oclif', async () => {
    const ours = await runCli(['--version']);
    expect(ours.code).toBe(0);
    const pjson = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(ours.stdout).toBe(`tykdr/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`);
    // oclif's own --version, for the same package (found from its package.json: bin/ has a package.json of its own,
    // which makes its scripts CommonJS)
    const script = `import('@oclif/core').then((o) => o.execute({ dir: ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'package.json')).href)}, args: ['--version'] }))`;
    const oclif = await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
    expect(ours.stdout).toBe(oclif.stdout);
  });

  it('a command manifest older than dist/commands is not used: it is replaced by a fresh one', async () => {
    // In a copy of the install (bin/ and package.json copied, dist/ and node_modules/ linked): a stale manifest in
    // the checkout itself would break the CLI runs of tests running at the same time.
    const root = await mkdtemp(path.join(tmpdir(), 'tykdr-startup-'));
    await cp(path.join(repoRoot, 'bin'), path.join(root, 'bin'), { recursive: true });
    await copyFile(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
    await symlink(path.join(repoRoot, 'dist'), path.join(root, 'dist'));
    await symlink(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
    const manifest = path.join(root, 'oclif.manifest.json');
    const runCli = (args: string[]) => runIn(root, args);
    // A stale manifest that lists no commands: were it used, every command would be "not found".
    await writeFile(manifest, JSON.stringify({ version: JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')).version, commands: {} }));
    await utimes(manifest, new Date(0), new Date(0));
    const res = await runCli(['plan', 'validate', '--help']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('--config');
    const fresh = JSON.parse(await readFile(manifest, 'utf8')) as { commands: Record<string, { flags: Record<string, unknown> }> };
    expect(Object.keys(fresh.commands)).toEqual(expect.arrayContaining(['backup', 'restore', 'plan:validate']));
    expect(Object.keys(fresh.commands.restore!.flags)).toEqual(expect.arrayContaining(['plan', 'yes', 'json']));
    expect((await stat(manifest)).mtimeMs).toBeGreaterThan(0);
    // And the fresh one is used: a flag it lists is accepted.
    const again = await runCli(['restore', '--help']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('--plan');
    await rm(root, { recursive: true, force: true });
  });

  it('the bundle (bin/bundle.js) runs every command, and is used only while it is newer than dist/commands', async () => {
    // A copy of the install with its own dist/ (the checkout's bundle may be missing or stale: only `npm run build`
    // makes one), bundled here by the build's own script.
    const root = await mkdtemp(path.join(tmpdir(), 'tykdr-bundle-'));
    try {
      await cp(path.join(repoRoot, 'bin'), path.join(root, 'bin'), { recursive: true });
      await copyFile(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
      await cp(path.join(repoRoot, 'dist'), path.join(root, 'dist'), { recursive: true, filter: (src) => !src.includes(`${path.sep}bundle`) });
      await symlink(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
      await symlink(path.join(repoRoot, 'plans'), path.join(root, 'plans'));
      await exec(process.execPath, [path.join(root, 'bin/bundle.js')], { cwd: root });

      // Every bundled command module loads (a library that breaks when bundled fails here, not in a user's restore).
      const commands: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          if (e.isDirectory()) await walk(path.join(dir, e.name));
          else if (e.name.endsWith('.js')) commands.push(path.join(dir, e.name));
        }
      };
      await walk(path.join(root, 'dist/bundle/commands'));
      expect(commands.length).toBeGreaterThanOrEqual(15);
      const probe = `const fs = ${JSON.stringify(commands.map((c) => pathToFileURL(c).href))};
        for (const f of fs) { const m = await import(f); if (typeof m.default?.prototype?.run !== 'function') throw new Error(f + ': no command'); }
        console.log('loaded ' + fs.length);`;
      const loaded = await exec(process.execPath, ['--input-type=module', '-e', probe], { cwd: root });
      expect(loaded.stdout.trim()).toBe(`loaded ${commands.length}`);

      // The S3 client is bundled with the names tykdr uses only (s3-sdk-names.ts): each is there, and a client made from
      // it sends a signed request over node's HTTP (a local server answers it).
      const { S3_SDK_NAMES } = (await import(pathToFileURL(path.join(repoRoot, 'dist/backends/stores/s3-sdk-names.js')).href)) as { S3_SDK_NAMES: string[] };
      const sdkProbe = `const sdk = require(${JSON.stringify(path.join(root, 'dist/bundle/s3-sdk.cjs'))});
        const missing = ${JSON.stringify(S3_SDK_NAMES)}.filter((n) => typeof sdk[n] !== 'function');
        const seen = [];
        const srv = require('node:http').createServer((req, res) => { seen.push({ method: req.method, url: req.url, auth: String(req.headers.authorization).split(' ')[0] }); res.end(); });
        srv.listen(0, '127.0.0.1', async () => {
          const c = new sdk.S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:' + srv.address().port, forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
          const out = await c.send(new sdk.HeadBucketCommand({ Bucket: 'bkt' }));
          c.destroy();
          srv.close();
          srv.closeAllConnections();
          console.log(JSON.stringify({ missing, exports: Object.keys(sdk).length, status: out.$metadata.httpStatusCode, seen }));
        });`;
      const sdkOut = JSON.parse((await exec(process.execPath, ['-e', sdkProbe], { cwd: root, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } })).stdout);
      expect(sdkOut).toEqual({ missing: [], exports: S3_SDK_NAMES.length, status: 200, seen: [{ method: 'HEAD', url: '/bkt/', auth: 'AWS4-HMAC-SHA256' }] });

      // The MongoDB driver is bundled alone too (src/backends/mongo/driver.ts): none of it in cli.cjs, all of it in
      // mongodb.cjs (its client, its error classes, and BSON both ways).
      expect(await readFile(path.join(root, 'dist/bundle/cli.cjs'), 'latin1')).not.toContain('node_modules/mongodb/');
      const mongoProbe = `const m = require(${JSON.stringify(path.join(root, 'dist/bundle/mongodb.cjs'))});
        const doc = m.BSON.deserialize(m.BSON.serialize({ a: 7 }));
        console.log(JSON.stringify({ a: doc.a, classes: ['MongoClient', 'MongoParseError', 'MongoServerError', 'MongoServerSelectionError'].map((n) => typeof m[n]) }));`;
      const mongoOut = JSON.parse((await exec(process.execPath, ['-e', mongoProbe], { cwd: root })).stdout);
      expect(mongoOut).toEqual({ a: 7, classes: ['function', 'function', 'function', 'function'] });

      // A real command through the bundle (its built-in plans found from the bundle's own place), then proof of which code ran: a bundled command replaced by a marker.
      // TYKDR_CODE_CACHE=0: the ES module bundle (the CommonJS one with its code cache is tested below).
      const esm = { TYKDR_CODE_CACHE: '0' };
      const real = await runIn(root, ['plan', 'show', 'full', '--json'], esm);
      expect(real.code, real.stderr).toBe(0);
      expect(JSON.parse(real.stdout)).toHaveProperty('steps');
      const marked = path.join(root, 'dist/bundle/commands/snapshots.js');
      await writeFile(marked, `import { Command } from '@oclif/core';\nexport default class M extends Command { async run() { this.log('from the bundle'); } }\n`);
      expect((await runIn(root, ['snapshots'], esm)).stdout).toBe('from the bundle\n');

      // The CommonJS bundle through the V8 code cache (bin/code-cache.js): the first run writes the user's cache, the
      // next one uses it, and the same output comes from both.
      const cache = path.join(root, 'cache');
      const withCache = { TYKDR_CACHE_DIR: cache };
      const first = await runIn(root, ['plan', 'show', 'full', '--json'], withCache);
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toEqual(JSON.parse(real.stdout));
      const files = await readdir(cache);
      expect(files).toEqual([expect.stringMatching(/^v8-plan-[0-9a-f]{40}\.bin$/)]);
      expect((await stat(cache)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(cache, files[0]!))).mode & 0o777).toBe(0o600);
      const firstAt = (await stat(path.join(cache, files[0]!))).mtimeMs;
      const second = await runIn(root, ['plan', 'show', 'full', '--json'], withCache);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toBe(first.stdout);
      expect(second.stderr).toBe('');
      // V8 took the cache (one it rejected, e.g. made under other V8 flags, is written again by the next whole run).
      expect(await readdir(cache)).toEqual(files);
      expect((await stat(path.join(cache, files[0]!))).mtimeMs).toBe(firstAt);
      // Never stale code: the bundle's text changed at the same length (V8 alone would take the old bytecode).
      const missing = ['snapshots', '-c', path.join(root, 'missing.yaml')];
      expect((await runIn(root, missing, withCache)).stderr).toContain('cannot read config file');
      expect((await readdir(cache)).some((f) => f.startsWith('v8-snapshots-'))).toBe(true);
      const cjs = path.join(root, 'dist/bundle/cli.cjs');
      const text = await readFile(cjs, 'utf8');
      await writeFile(cjs, text.replace('cannot read config file', 'CANNOT READ CONFIG FILE'));
      expect((await runIn(root, missing, withCache)).stderr).toContain('CANNOT READ CONFIG FILE');
      const snapshotsCaches = async () => (await readdir(cache)).filter((f) => f.startsWith('v8-snapshots-'));
      expect(await snapshotsCaches()).toEqual([expect.stringMatching(/\.partial\.bin$/)]);
      // A failed run's cache (part of the path compiled) is replaced by the first run that does the command's whole
      // work and exits 0; a run that only prints help is partial too (its cache kept for good would lack the command).
      const partial = (await snapshotsCaches())[0]!;
      expect((await runIn(root, ['snapshots', '--help'], withCache)).code).toBe(0);
      expect(await snapshotsCaches()).toEqual([partial]);
      const config = path.join(root, 'ok.yaml');
      await mkdir(path.join(root, 'store'));
      await writeFile(
        config,
        `version: 1\nstore: { kind: local, path: ${path.join(root, 'store')} }\nencryption: { recipients: [${RECIPIENT}] }\ncomponents:\n  config: { kind: files, roots: [${root}] }\n`,
      );
      const whole = await runIn(root, ['snapshots', '-c', config], withCache);
      expect(whole.code, whole.stderr).toBe(0);
      expect(whole.stdout).toContain('No snapshots in');
      expect(await snapshotsCaches()).toEqual([expect.stringMatching(/^v8-snapshots-[0-9a-f]{40}\.bin$/)]);
      // A MongoDB command through the bundle takes the driver from mongodb.cjs with a cache of its own, and the
      // driver's errors are explained (its classes are the ones its client threw): an address nothing listens on.
      const mongoConfig = path.join(root, 'mongo.yaml');
      await writeFile(
        mongoConfig,
        `version: 1\nstore: { kind: local, path: ${path.join(root, 'store')} }\nencryption: { recipients: [${RECIPIENT}] }\n` +
          `components:\n  db: { kind: mongo, uri: "mongodb://127.0.0.1:1/", database: tyk_analytics, binDir: ${toolsBin}, connectTimeout: 1s }\n`,
      );
      const mongo = await runIn(root, ['backup', '-c', mongoConfig], withCache);
      expect(mongo.code, mongo.stderr).toBe(3);
      expect(mongo.stderr).toContain('cannot reach MongoDB at 127.0.0.1:1');
      expect((await readdir(cache)).filter((f) => f.startsWith('v8-backup-mongodb-'))).toEqual([expect.stringMatching(/^v8-backup-mongodb-[0-9a-f]{40}\.partial\.bin$/)]);
      // Kept: a help run after it neither replaces nor adds a cache.
      const kept = (await snapshotsCaches())[0]!;
      const keptAt = (await stat(path.join(cache, kept))).mtimeMs;
      expect((await runIn(root, ['snapshots', '--help'], withCache)).code).toBe(0);
      expect(await snapshotsCaches()).toEqual([kept]);
      expect((await stat(path.join(cache, kept))).mtimeMs).toBe(keptAt);
      // A topic alone prints its help and exits 0: partial too (no command ran).
      const topic = await runIn(root, ['key'], withCache);
      expect(topic.code, topic.stderr).toBe(0);
      expect(topic.stdout).toContain('key generate');
      expect((await readdir(cache)).filter((f) => f.startsWith('v8-key-'))).toEqual([expect.stringMatching(/^v8-key-[0-9a-f]{40}\.partial\.bin$/)]);
      // A cache folder that cannot be made, or that others may write to, is not used: the command still runs.
      const notADir = await runIn(root, ['plan', 'show', 'full', '--json'], { TYKDR_CACHE_DIR: path.join(root, 'package.json', 'x') });
      expect(notADir.code, notADir.stderr).toBe(0);
      expect(notADir.stdout).toBe(first.stdout);
      const shared = path.join(root, 'shared');
      await mkdir(shared);
      await chmod(shared, 0o777);
      const open = await runIn(root, ['plan', 'show', 'full', '--json'], { TYKDR_CACHE_DIR: shared });
      expect(open.code, open.stderr).toBe(0);
      expect(await readdir(shared)).toEqual([]);
      // tsc rewrites every file it emits: a bundle older than dist/commands is stale, and dist/ runs instead.
      const old = new Date(Date.now() - 3600_000);
      await utimes(path.join(root, 'dist/bundle/STAMP'), old, old);
      const fallback = await runIn(root, ['snapshots', '--help']);
      expect(fallback.code, fallback.stderr).toBe(0);
      expect(fallback.stdout).toContain('--config');
      const ranDist = await runIn(root, ['snapshots']);
      expect(ranDist.stdout).not.toContain('from the bundle');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
