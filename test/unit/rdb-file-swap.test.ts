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

describe('swapRdbFile: the data it sets aside', () => {
  it('two swaps in one second keep both set-aside files: the data from before the first swap is never overwritten', async () => {
    const dir = await tempDir('swap');
    const dataDir = path.join(dir, 'data');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'dump.rdb'), 'before any restore');
    const asides: string[] = [];
    const stateFile = path.join(dir, 'state');
    await writeFile(stateFile, 'up\n');
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
