import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
// @ts-expect-error bin/manifest.js is plain JavaScript without types
import { withoutCollator } from '../../bin/manifest.js';

const exec = promisify(execFile);
const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));

/** The command ids oclif lists (src/commands/key/new.ts is "key:new"). */
function commandIds(dir = path.join(srcDir, 'commands'), prefix: string[] = []): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? commandIds(path.join(dir, e.name), [...prefix, e.name]) : e.name.endsWith('.ts') ? [[...prefix, e.name.slice(0, -3)].join(':')] : [],
  );
}

const collator = String.prototype.localeCompare;

describe('start-up work left for later', () => {
  it("oclif's sort of the command ids gives the collator's order without it, and localeCompare is restored", async () => {
    const ids = commandIds();
    expect(ids).toContain('snapshot:show');
    // More ids of the same alphabet, to compare prefixes, '-' and ':' against each other.
    const all = [...ids, 'plan-x', 'plan', 'key-', 'key:', 'a:b', 'a-b', 'ab', ''];
    const byCollator = [...all].sort((a, b) => collator.call(a, b));
    const shuffled = [...all].reverse();
    const inside = await withoutCollator(async () => {
      expect(String.prototype.localeCompare).not.toBe(collator);
      return {
        sorted: [...shuffled].sort((a, b) => a.localeCompare(b)),
        // Anything else is the collator's: digits, capitals, other letters, and calls with locales or options.
        others: [['a1', 'a:'], ['B', 'a'], ['é', 'f'], ['a', 'B']].map(([a, b]) => Math.sign(a!.localeCompare(b!))),
        withLocale: Math.sign('a'.localeCompare('B', 'en')),
      };
    });
    expect(inside.sorted).toEqual(byCollator);
    expect(inside.others).toEqual([['a1', 'a:'], ['B', 'a'], ['é', 'f'], ['a', 'B']].map(([a, b]) => Math.sign(collator.call(a!, b!))));
    expect(inside.withLocale).toBe(-1);
    expect(String.prototype.localeCompare).toBe(collator);

    await expect(withoutCollator(async () => Promise.reject(new Error('load failed')))).rejects.toThrow('load failed');
    expect(String.prototype.localeCompare).toBe(collator);
  });

  it('a backup loads zstd-napi when it first compresses, not with its modules', async () => {
    const backup = path.join(srcDir, 'core', 'backup.ts');
    const pipeline = path.join(srcDir, 'core', 'pipeline.ts');
    const script =
      `import { createRequire } from 'node:module'; await import(${JSON.stringify(backup)}); ` +
      `const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('zstd-napi')); ` +
      `const before = loaded(); const { createCompressor } = await import(${JSON.stringify(pipeline)}); ` +
      `createCompressor({ algorithm: 'zstd', level: 1 }).destroy(); console.log(JSON.stringify({ before, after: loaded() }));`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim())).toEqual({ before: false, after: true });
  });

  it('an install whose zstd addon cannot load fails at the first compression, with the fix', async () => {
    const compress = path.join(srcDir, 'core', 'zstd-compress.ts');
    // The addon made unloadable in this child only (as when npm skipped its build).
    const script =
      `import Module from 'node:module'; const load = Module._load; ` +
      `Module._load = function (id, ...rest) { if (String(id).endsWith('binding.node')) throw new Error("Cannot find module './build/Release/binding.node'"); return load.call(this, id, ...rest); }; ` +
      `const { ZstdCompressStream } = await import(${JSON.stringify(compress)}); console.log('imported'); ` +
      `try { new ZstdCompressStream({ level: 1, nbWorkers: 0 }); } catch (e) { console.log(JSON.stringify({ name: e.name, kind: e.kind, message: e.message, fix: e.fix })); }`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    const [first, second] = stdout.trim().split('\n');
    expect(first).toBe('imported');
    const err = JSON.parse(second!) as { name: string; kind: string; message: string; fix: string };
    expect(err).toMatchObject({ name: 'TykdrError', kind: 'internal' });
    expect(err.message).toBe("zstd could not be loaded (zstd-napi/binding.js: Cannot find module './build/Release/binding.node')");
    expect(err.fix).toContain('allowScripts');
  });
});
