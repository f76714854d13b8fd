import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

const exec = promisify(execFile);

/** Runs bin/run.js of another install root, as runCli does for the checkout. */
async function runIn(root: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [path.join(root, 'bin/run.js'), ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('start-up', () => {
  it('--version prints what oclif prints, without loading oclif', async () => {
    const ours = await runCli(['--version']);
    expect(ours.code).toBe(0);
    const pjson = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(ours.stdout).toBe(`tykdr/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`);
    // oclif's own --version, for the same package
    const script = `import('@oclif/core').then((o) => o.execute({ dir: ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'bin/run.js')).href)}, args: ['--version'] }))`;
    const oclif = await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
    expect(ours.stdout).toBe(oclif.stdout);
  });

  it('a command manifest older than dist/commands is not used: it is replaced by a fresh one', async () => {
    // In a copy of the install (bin/ and package.json copied, dist/ and node_modules/ linked): a stale manifest in
    // the checkout itself would break the CLI runs of tests running at the same time.
    const root = await mkdtemp(path.join(tmpdir(), 'tykdr-startup-'));
    await mkdir(path.join(root, 'bin'));
    for (const f of ['run.js', 'manifest.js']) await copyFile(path.join(repoRoot, 'bin', f), path.join(root, 'bin', f));
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
});
