import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CommandSplitter, encodeArgs } from '../../src/backends/redis/formats/command-feed.js';

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('CommandSplitter', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('splits commands cut anywhere, with their raw bytes and offsets', () => {
    const cmds = [encodeArgs(['SELECT', '0']), encodeArgs(['SET', 'k', randomBytes(5000)]), Buffer.from('\n'), encodeArgs(['DEL', 'k'])];
    const feed = Buffer.concat(cmds);
    for (const size of [1, 7, 64, 4096, feed.length]) {
      const s = new CommandSplitter();
      const got: Array<{ name: string; end: number }> = [];
      const raw: Buffer[] = [];
      for (const c of chunks(feed, size)) {
        const out = s.push(c);
        for (const x of out) got.push({ name: x.args[0]?.toString() ?? '', end: x.end });
        if (out.raw) raw.push(Buffer.from(out.raw));
      }
      expect(s.pending).toBe(0);
      expect(Buffer.concat(raw).equals(feed)).toBe(true);
      let end = 0;
      expect(got).toEqual(cmds.map((c, i) => ({ name: ['SELECT', 'SET', '', 'DEL'][i]!, end: (end += c.length) })));
    }
  });

  it('does not copy a large command over and over while it arrives in small chunks (bounded work and memory)', () => {
    const big = encodeArgs(['SET', 'big', randomBytes(8 << 20)]);
    const concat = vi.spyOn(Buffer, 'concat');
    const from = vi.spyOn(Buffer, 'from');
    const s = new CommandSplitter();
    let n = 0;
    for (const c of chunks(big, 64 * 1024)) n += s.push(c).length;
    expect(n).toBe(1);
    const copied =
      concat.mock.results.reduce((t, r) => t + ((r.value as Buffer)?.length ?? 0), 0) +
      from.mock.results.reduce((t, r) => t + ((r.value as Buffer)?.length ?? 0), 0);
    // Every byte copied a few times at most; a splitter re-joining the whole pending command per chunk copies ~64x here.
    expect(copied).toBeLessThan(3 * big.length);
  });
});
