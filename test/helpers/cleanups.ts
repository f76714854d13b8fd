import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

/**
 * Per-test-file teardown: push async cleanups (servers, folders); they run in reverse order after all
 * tests of the file, each one even when an earlier one fails. Call once at the top of a test file.
 */
export function useCleanups(): { cleanups: Array<() => Promise<unknown>>; tempDir(prefix: string): Promise<string> } {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });
  return {
    cleanups,
    tempDir: async (prefix) => {
      const d = await mkdtemp(path.join(tmpdir(), prefix));
      cleanups.push(() => rm(d, { recursive: true, force: true }));
      return d;
    },
  };
}
