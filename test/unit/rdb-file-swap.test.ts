import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { swapRdbFile, type RdbSwapOptions, type TargetState } from '../../src/backends/redis/target/rdb-file-swap.js';
import { useCleanups } from '../helpers/cleanups.js';

/*
 * The set-aside copy of a target's data file must never be overwritten: a swap in the same second as the one before
 * (a --resume right after a killed restore) would otherwise rename the file in place over the first swap's
 * `.bak`, which holds the data from before the restore. The target here is a stand-in (commands that write its
 * state, a probe that reads it): what is tested is what happens to the files.
 */
const { tempDir } = useCleanups();

/** A stand-in Redis: its stop and start commands write its state into a file, which the probe reads. */
function options(dataDir: string, staged: string, stateFile: string): RdbSwapOptions {
  return {
    staged,
    kind: 'file',
    dataDir,
    destName: 'dump.rdb',
    stopCommand: `echo down > '${stateFile}'`,
    startCommand: `echo up > '${stateFile}'`,
    where: 'components.redis.restore',
    display: '127.0.0.1:0',
    stopTimeoutMs: 2000,
    loadTimeoutMs: 2000,
    probe: async () => (await readFile(stateFile, 'utf8')).trim() as TargetState,
  };
}

/** A folder with a data folder (holding `dump.rdb` when `previous` is given) and the stand-in's state file, 'up'. */
async function target(tag: string, previous?: string): Promise<{ dir: string; dataDir: string; stateFile: string }> {
  const dir = await tempDir(tag);
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir);
  if (previous !== undefined) await writeFile(path.join(dataDir, 'dump.rdb'), previous);
  const stateFile = path.join(dir, 'state');
  await writeFile(stateFile, 'up\n');
  return { dir, dataDir, stateFile };
}

describe('swapRdbFile: the data it sets aside', () => {
  it('two swaps in one second keep both set-aside files: the data from before the first swap is never overwritten', async () => {
    const { dir, dataDir, stateFile } = await target('swap', 'before any restore');
    const asides: string[] = [];
    for (const content of ['first snapshot', 'second snapshot', 'third snapshot']) {
      const staged = path.join(dir, `${content.split(' ')[0]}.rdb`);
      await writeFile(staged, content);
      const res = await swapRdbFile(options(dataDir, staged, stateFile));
      expect(res.wasDown).toBe(false);
      expect(res.previousFile).not.toBeNull();
      asides.push(res.previousFile!);
    }
    // Three swaps take a few ms: at least two share a second, and still every set-aside file has its own name.
    expect(new Set(asides).size).toBe(3);
    expect(await readFile(path.join(dataDir, 'dump.rdb'), 'utf8')).toBe('third snapshot');
    expect(await Promise.all(asides.map((a) => readFile(a, 'utf8')))).toEqual(['before any restore', 'first snapshot', 'second snapshot']);
    expect(asides.every((a) => /dump\.rdb\.tykdr-\d{8}T\d{6}Z(-\d+)?\.bak$/.test(path.basename(a)))).toBe(true);
  });
});

describe('swapRdbFile: beforeStart (where an rdb-file restore begins its evidence read)', () => {
  it('is called once, with the target stopped and the restored file in place, before the start command', async () => {
    const { dir, dataDir, stateFile } = await target('swap-before-start', 'before the restore');
    const staged = path.join(dir, 'staged.rdb');
    await writeFile(staged, 'the snapshot');
    const seen: Array<{ state: string; placed: string }> = [];
    const o = options(dataDir, staged, stateFile);
    // Synchronous reads: beforeStart is not awaited, so what it sees is the moment it is called.
    o.beforeStart = () => seen.push({ state: readFileSync(stateFile, 'utf8').trim(), placed: readFileSync(path.join(dataDir, 'dump.rdb'), 'utf8') });
    await swapRdbFile(o);
    expect(seen).toEqual([{ state: 'down', placed: 'the snapshot' }]);
    expect((await readFile(stateFile, 'utf8')).trim()).toBe('up');
  });

  it('is not called when the stop fails (nothing was placed)', async () => {
    const { dir, dataDir, stateFile } = await target('swap-stop-fails');
    const staged = path.join(dir, 'staged.rdb');
    await writeFile(staged, 'the snapshot');
    let called = 0;
    const o = { ...options(dataDir, staged, stateFile), stopCommand: 'exit 3', beforeStart: () => void called++ };
    await expect(swapRdbFile(o)).rejects.toThrow(/stopCommand failed with exit code 3/);
    expect(called).toBe(0);
  });
});
