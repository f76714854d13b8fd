import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Until `pid` is gone (or a zombie: dead, not yet reaped by an init that is slow to). */
const diesOrZombie = (pid: number, what: string) =>
  waitFor(async () => !alive(pid) || (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(' ')[2] === 'Z', { timeoutMs: 15_000, what });

/** A child started under watchChild dies with its parent, even when the parent is killed with SIGKILL. */
describe('watchChild', () => {
  it.each([
    ['the child', "spawn('sleep', ['1000'], { stdio: 'ignore' })", '{}'],
    ["the child's whole process group (a shell and what it started)", "spawn('/bin/sh', ['-c', 'sleep 1000 & wait'], { stdio: 'ignore', detached: true })", '{ group: true }'],
  ])('stops %s when its parent is SIGKILLed', async (_what, spawnCall, opts) => {
    // The pid printed is the one that must die: the child itself, or (group) the sleep its shell started.
    const script = `
      const { spawn, execFileSync } = require('node:child_process');
      import(${JSON.stringify(path.join(repoRoot, 'dist/core/util/watchdog.js'))}).then(({ watchChild }) => {
        const child = ${spawnCall};
        watchChild(child, ${opts});
        // (group) Until the shell has started its sleep: pgrep exits 1 while it has no child yet.
        const report = () => {
          let kids = [];
          try {
            kids = ${opts === '{}' ? '[]' : "String(execFileSync('pgrep', ['-P', String(child.pid)])).trim().split('\\n')"};
          } catch {
            return setTimeout(report, 50);
          }
          process.stdout.write(String(kids[0] ?? child.pid) + '\\n');
        };
        setTimeout(report, 300);
      });
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => /\d+\n/.test(out), { timeoutMs: 15_000, what: 'the child pid' });
    const pid = Number(out.trim());
    expect(alive(pid)).toBe(true);
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).toContain('sleep');
    parent.kill('SIGKILL');
    await diesOrZombie(pid, 'the watched child to die with its parent');
  });

  it('keeps watching a group whose leader exited while a member still holds its pipe, and stops that member when the parent is SIGKILLed', async () => {
    // pg_restore --jobs: the parent can be gone while a worker it forked still writes to the same stderr pipe.
    const script = `
      const { spawn } = require('node:child_process');
      import(${JSON.stringify(path.join(repoRoot, 'dist/core/util/watchdog.js'))}).then(({ watchChild }) => {
        // The leader starts a member holding stderr (a pipe to us), prints its pid and exits at once.
        const child = spawn('/bin/sh', ['-c', 'sleep 1000 & echo $!; exit 0'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        watchChild(child, { group: true });
        child.stdout.on('data', (d) => process.stdout.write(d));
        child.once('exit', () => process.stdout.write('leader-exited\\n'));
      });
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => /^\d+\n[\s\S]*leader-exited/.test(out), { timeoutMs: 15_000, what: 'the member pid and the leader gone' });
    const pid = Number(out.split('\n')[0]);
    expect(alive(pid)).toBe(true);
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).toContain('sleep');
    parent.kill('SIGKILL');
    await diesOrZombie(pid, 'the member outliving its leader to die with the parent');
  });
});
