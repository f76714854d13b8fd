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
  it("oclif's sort of the command ids gives the root collation's order without the collator, and localeCompare is restored", async () => {
    const ids = commandIds();
    expect(ids).toContain('snapshot:show');
    // More ids of the same alphabet, to compare prefixes, '-' and ':' against each other.
    const all = [...ids, 'plan-x', 'plan', 'key-', 'key:', 'a:b', 'a-b', 'ab', ''];
    const root = new Intl.Collator('und');
    const byRoot = [...all].sort((a, b) => root.compare(a, b));
    const shuffled = [...all].reverse();
    // What withoutCollator finds on the prototype: the collator, counting the calls that reach it.
    let reached = 0;
    String.prototype.localeCompare = function (this: string, ...args: Parameters<typeof collator>) {
      reached++;
      return collator.apply(this, args);
    };
    const counting = String.prototype.localeCompare;
    try {
      const inside = await withoutCollator(async () => {
        expect(String.prototype.localeCompare).not.toBe(counting);
        const sorted = [...shuffled].sort((a, b) => a.localeCompare(b));
        const forIds = reached;
        // Anything else is the collator's: digits, capitals, other letters, and calls with locales or options.
        const others = [['a1', 'a:'], ['B', 'a'], ['é', 'f'], ['a', 'B']].map(([a, b]) => Math.sign(a!.localeCompare(b!)));
        const withLocale = Math.sign('a'.localeCompare('B', 'en'));
        return { sorted, forIds, others, withLocale, forOthers: reached - forIds };
      });
      expect(inside.sorted).toEqual(byRoot);
      expect(inside.forIds).toBe(0);
      expect(inside.others).toEqual([['a1', 'a:'], ['B', 'a'], ['é', 'f'], ['a', 'B']].map(([a, b]) => Math.sign(collator.call(a!, b!))));
      expect(inside.withLocale).toBe(-1);
      expect(inside.forOthers).toBe(5);
      expect(String.prototype.localeCompare).toBe(counting);

      await expect(withoutCollator(async () => Promise.reject(new Error('load failed')))).rejects.toThrow('load failed');
      expect(String.prototype.localeCompare).toBe(counting);
    } finally {
      String.prototype.localeCompare = collator;
    }
  });

  it('bin/ scripts run to their end: a failure exits 1, and a main that never settles with nothing left to wait for exits 13, never 0', async () => {
    const manifest = fileURLToPath(new URL('../../bin/manifest.js', import.meta.url));
    const run = async (main: string) => {
      const script = `require(${JSON.stringify(manifest)}).runMain(${main});`;
      return exec(process.execPath, ['-e', script], { timeout: 30_000 }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    };
    expect(await run('async () => { await new Promise((r) => setTimeout(r, 10)); }')).toEqual({ code: 0, stderr: '' });
    const failed = await run("async () => { throw new Error('no package.json'); }");
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('no package.json');
    const hung = await run('() => new Promise(() => {})');
    expect(hung.code).toBe(13);
    expect(hung.stderr).toContain('the command stopped before it finished');
  });

  it('the backup command loads zstd-napi when it first compresses and the MongoDB driver when a MongoDB component runs, not with its modules', async () => {
    const command = path.join(srcDir, 'commands', 'backup.ts');
    const pipeline = path.join(srcDir, 'core', 'pipeline.ts');
    const script =
      `import { createRequire } from 'node:module'; await import(${JSON.stringify(command)}); ` +
      `const loaded = (m) => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/' + m + '/')); ` +
      `const before = { zstd: loaded('zstd-napi'), mongodb: loaded('mongodb') }; const { createCompressor } = await import(${JSON.stringify(pipeline)}); ` +
      `createCompressor({ algorithm: 'zstd', level: 1 }).destroy(); console.log(JSON.stringify({ before, after: loaded('zstd-napi') }));`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ before: { zstd: false, mongodb: false }, after: true });
  });

  it('an install whose zstd addon cannot load fails at the first compression or decompression, with the fix, not as a damaged snapshot', async () => {
    const compress = path.join(srcDir, 'core', 'zstd-compress.ts');
    const pipelineTs = path.join(srcDir, 'core', 'pipeline.ts');
    const staging = path.join(srcDir, 'core', 'restore', 'staging.ts');
    // The addon made unloadable in this child only (as when npm skipped its build).
    const script =
      `import Module from 'node:module'; import { mkdtempSync, writeFileSync, existsSync } from 'node:fs'; import { tmpdir } from 'node:os'; import path from 'node:path'; ` +
      `const load = Module._load; ` +
      `Module._load = function (id, ...rest) { if (String(id).endsWith('binding.node')) throw new Error("Cannot find module './build/Release/binding.node'"); return load.call(this, id, ...rest); }; ` +
      `const { ZstdCompressStream } = await import(${JSON.stringify(compress)}); ` +
      `const { createDecompressor } = await import(${JSON.stringify(pipelineTs)}); ` +
      `const { inflateStaged } = await import(${JSON.stringify(staging)}); console.log('imported'); ` +
      `const seen = (e) => ({ name: e.name, kind: e.kind, message: e.message, fix: e.fix }); const out = []; ` +
      `try { new ZstdCompressStream({ level: 1, nbWorkers: 0 }); } catch (e) { out.push(seen(e)); } ` +
      `try { createDecompressor('zstd', { worker: true }); } catch (e) { out.push(seen(e)); } ` +
      `const dir = mkdtempSync(path.join(tmpdir(), 'tykdr-nozstd-')); writeFileSync(path.join(dir, 'a.zst'), 'x'); ` +
      `await inflateStaged({ file: path.join(dir, 'a.zst'), algorithm: 'zstd', storedBytes: 8 << 20, plaintextBytes: 1 }, path.join(dir, 'out', 'a'), 'components.redis').catch((e) => out.push(seen(e))); ` +
      `console.log(JSON.stringify({ out, leftover: existsSync(path.join(dir, 'out', 'a')) }));`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    const [first, second] = stdout.trim().split('\n');
    expect(first).toBe('imported');
    const { out, leftover } = JSON.parse(second!) as { out: Array<{ name: string; kind: string; message: string; fix: string }>; leftover: boolean };
    expect(out).toHaveLength(3);
    for (const err of out) {
      expect(err).toMatchObject({ name: 'TykdrError', kind: 'internal' });
      expect(err.message).toBe("zstd could not be loaded (zstd-napi/binding.js: Cannot find module './build/Release/binding.node')");
      expect(err.fix).toContain('allowScripts');
    }
    expect(leftover).toBe(false);
  });
});
