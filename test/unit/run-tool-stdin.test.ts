import { Readable, Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../src/backends/postgres/target/run-tool.js';

/** `n` chunks of 64 KiB, counted as they are read (the stream a restore decompresses into pg_restore). */
function source(n: number): { stream: Readable; read: () => number; destroyed: () => boolean } {
  let read = 0;
  let i = 0;
  const stream = new Readable({
    read() {
      if (i++ >= n) return this.push(null);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      read += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, read: () => read, destroyed: () => stream.destroyed };
}

const opts = { env: process.env, secrets: [] };

describe('runTool with stdin (pg_restore reading a decompressed archive from a pipe)', () => {
  it('a tool that reads everything: clean exit, the whole input went through', async () => {
    const src = source(200); // 12.5 MiB, well past a pipe's buffer: backpressure is exercised
    const run = await runTool('sh', ['-c', 'wc -c >&2'], { ...opts, stdin: src.stream });
    expect(run.code).toBe(0);
    expect(run.inputError).toBeUndefined();
    expect(Number(run.lines[0]!.trim())).toBe(200 * 64 * 1024);
    expect(src.read()).toBe(200 * 64 * 1024);
  });

  it('a tool that exits 0 before reading it all: the rest is drained, so the caller still counts every byte', async () => {
    const src = source(200);
    const run = await runTool('head', ['-c', '10'], { ...opts, stdin: src.stream });
    expect(run.code).toBe(0);
    expect(run.inputError).toBeUndefined();
    expect(src.read()).toBe(200 * 64 * 1024);
  });

  it('a tool that fails: the input is dropped, not read to its end, and no input error is reported', async () => {
    const src = source(100_000); // 6.5 GB: reading it all would not finish in the test's time
    const run = await runTool('sh', ['-c', 'head -c 1000 >/dev/null; echo "pg_restore: error: boom" >&2; exit 1'], { ...opts, stdin: src.stream });
    expect(run.code).toBe(1);
    expect(run.lines).toEqual(['pg_restore: error: boom']);
    expect(run.inputError).toBeUndefined();
    expect(src.destroyed()).toBe(true);
    expect(src.read()).toBeLessThan(100_000 * 64 * 1024);
  });

  it('an input that fails (a corrupt frame) stops the tool and is reported as inputError', async () => {
    let n = 0;
    const corrupt = new Transform({
      transform(chunk, _enc, done) {
        if (++n === 5) return done(new Error('Unknown frame descriptor'));
        done(null, chunk);
      },
    });
    const src = source(100_000);
    src.stream.pipe(corrupt);
    corrupt.once('close', () => src.stream.destroy());
    // The tool would read forever: only the stop ends it.
    const run = await runTool('sh', ['-c', 'exec cat >/dev/null'], { ...opts, stdin: corrupt });
    expect(run.inputError?.message).toBe('Unknown frame descriptor');
    expect(run.code !== 0 || run.signal !== null).toBe(true);
  });

  it('an abort ends the tool and the input, and rejects with an AbortError', async () => {
    const src = source(100_000);
    const ac = new AbortController();
    const p = runTool('sh', ['-c', 'exec sleep 30'], { ...opts, stdin: src.stream, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(src.destroyed()).toBe(true);
  });
});
