import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODE_TABLE } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';

const exec = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('--help', () => {
  it.each([['init'], ['key', 'generate'], ['backup'], ['snapshots'], ['snapshot', 'show'], ['restore'], ['plan', 'show'], ['plan', 'validate']])('%s has examples, --config, --json and the exit-code table', async (...cmd) => {
    const res = await runCli([...cmd, '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('EXAMPLES');
    expect(res.stdout).toContain('--config');
    expect(res.stdout).toContain('--json');
    for (const e of EXIT_CODE_TABLE) expect(res.stdout).toContain(e.meaning.slice(0, 40));
  });

  it('an unknown flag is bad input (exit 2)', async () => {
    const res = await runCli(['backup', '--frobnicate']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--frobnicate');
  });
});

describe('tykdr key generate', () => {
  it('writes an age-keygen compatible identity with mode 0600 and prints the recipient', async () => {
    const file = path.join(dir, 'id.txt');
    const res = await runCli(['key', 'generate', '-o', file]);
    expect(res.code, res.stderr).toBe(0);
    const recipient = res.stdout.trim();
    expect(recipient).toMatch(/^age1[0-9a-z]{58}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const { stdout } = await exec('age-keygen', ['-y', file]);
    expect(stdout.trim()).toBe(recipient);
    expect(res.stdout + res.stderr).not.toContain('AGE-SECRET-KEY');
  });

  it('never overwrites an identity file', async () => {
    const file = path.join(dir, 'keep.txt');
    expect((await runCli(['key', 'generate', '-o', file])).code).toBe(0);
    const before = await readFile(file, 'utf8');
    const res = await runCli(['key', 'generate', '-o', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('never overwritten');
    expect(await readFile(file, 'utf8')).toBe(before);
  });
});

describe('tykdr init', () => {
  it('writes a commented config that loads, and refuses to overwrite it', async () => {
    const gen = await runCli(['key', 'generate', '-o', path.join(dir, 'init-id.txt')]);
    const file = path.join(dir, 'tykdr.yaml');
    const res = await runCli(['init', '-c', file, '--recipient', gen.stdout.trim()]);
    expect(res.code, res.stderr).toBe(0);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# Where snapshots go.');
    expect(text).toContain(gen.stdout.trim());
    expect(res.stderr).toContain('with encryption.recipients set to');
    expect(res.stderr).not.toContain('Next: set encryption.recipients');
    // Before the first backup the store folder does not exist: said as such (a mistyped path reads the same).
    const none = await runCli(['snapshots', '-c', file]);
    expect(none.code, none.stderr).toBe(4);
    expect(none.stderr).toContain(`local store ${path.join(dir, 'tykdr-backups')} does not exist`);
    expect(none.stderr).toContain('`tykdr backup` creates the folder on its first run');
    await mkdir(path.join(dir, 'tykdr-backups'));
    const list = await runCli(['snapshots', '-c', file, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).snapshots).toEqual([]);
    const again = await runCli(['init', '-c', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('the file exists');
  });

  it('rejects a recipient that is not an age key before writing anything', async () => {
    const file = path.join(dir, 'bad.yaml');
    const res = await runCli(['init', '-c', file, '--recipient', 'ssh-ed25519 AAAA']);
    expect(res.code).toBe(2);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});
