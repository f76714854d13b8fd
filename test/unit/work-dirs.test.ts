import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeWorkDir, removeWorkDir, sweepStaleWorkDirs } from '../../src/core/restore/work-dirs.js';

/** A pid that no process has (beyond the kernel's pid_max). */
const DEAD_PID = 2 ** 22 + 12_345;

let base: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'tykdr-workdirs-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('work folders', () => {
  it('a new work folder carries its owner from the moment it has its name; nothing half-made is left', async () => {
    const dir = await makeWorkDir(base, 'tykdr-restore-');
    expect(path.basename(dir)).toMatch(/^tykdr-restore-/);
    const owner = JSON.parse(await readFile(path.join(dir, '.tykdr-owner.json'), 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect((await readdir(base)).filter((n) => n.startsWith('.tykdr-new-'))).toEqual([]);
  });

  it('the sweep removes folders of dead runs, half-made ones included, and keeps live ones', async () => {
    const mk = async (name: string, owner?: { pid: number }, ageMs = 0) => {
      const d = path.join(base, name);
      await mkdir(d);
      if (owner) await writeFile(path.join(d, '.tykdr-owner.json'), JSON.stringify({ ...owner, host: hostname(), started_at: new Date().toISOString() }));
      if (ageMs) await utimes(d, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
      return d;
    };
    await mk('tykdr-restore-dead', { pid: DEAD_PID });
    await mk('tykdr-restore-live', { pid: process.pid });
    await mk('.tykdr-new-dead', { pid: DEAD_PID });
    await mk('.tykdr-new-ownerless-old', undefined, 120_000);
    await mk('.tykdr-new-ownerless-fresh');
    await mk('tykdr-restore-ownerless-fresh');
    const said = await sweepStaleWorkDirs(base);
    expect((await readdir(base)).sort()).toEqual(['.tykdr-new-ownerless-fresh', 'tykdr-restore-live', 'tykdr-restore-ownerless-fresh']);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`tykdr-restore-dead, left by a killed tykdr run (pid ${DEAD_PID}`);
  });

  it('removing a work folder removes it whole; what a kill mid-way can leave (an empty or dead-owned being-made folder) the next sweep removes', async () => {
    const dir = await makeWorkDir(base, 'tykdr-restore-');
    await mkdir(path.join(dir, 'staged'));
    await writeFile(path.join(dir, 'staged', 'redis.rdb'), 'plaintext');
    await removeWorkDir(dir);
    expect(await readdir(base)).toEqual([]);
    // removeWorkDir renames the emptied folder to a being-made name before its owner file goes: a kill after the rename
    // leaves one of these, never an ownerless tykdr-restore-* folder (which the sweep keeps for an hour).
    const ownerless = path.join(base, '.tykdr-new-gone-tykdr-restore-a');
    await mkdir(ownerless);
    await utimes(ownerless, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const owned = path.join(base, '.tykdr-new-gone-tykdr-restore-b');
    await mkdir(owned);
    await writeFile(path.join(owned, '.tykdr-owner.json'), JSON.stringify({ pid: DEAD_PID, host: hostname(), started_at: new Date().toISOString() }));
    await sweepStaleWorkDirs(base);
    expect(await readdir(base)).toEqual([]);
  });
});
