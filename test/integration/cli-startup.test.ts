import { execFile } from 'node:child_process';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

const exec = promisify(execFile);
const manifest = path.join(repoRoot, 'oclif.manifest.json');

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
  });
});
