import { describe, expect, it } from 'vitest';
import { absoluteExpiry } from '../../src/backends/redis/pitr/replay.js';

const cmd = (...args: string[]) => ({ args: args.map((a) => Buffer.from(a)), end: 0 });
const text = (a: Buffer[]) => a.map((b) => b.toString());

describe('absoluteExpiry', () => {
  it('finds the EX option of a SET whose value is itself "EX" or "px"', () => {
    expect(text(absoluteExpiry('SET', cmd('SET', 'k', 'EX', 'EX', '10'), 1_000))).toEqual(['SET', 'k', 'EX', 'PXAT', '11000']);
    expect(text(absoluteExpiry('SET', cmd('SET', 'k', 'px', 'NX', 'PX', '500'), 1_000))).toEqual(['SET', 'k', 'px', 'NX', 'PXAT', '1500']);
  });

  it('leaves absolute and kept expiries alone (KEEPTTL, EXAT, PXAT, GETEX PERSIST)', () => {
    for (const c of [cmd('SET', 'k', 'v', 'KEEPTTL'), cmd('SET', 'k', 'v', 'EXAT', '99'), cmd('SET', 'k', 'v', 'PXAT', '99'), cmd('GETEX', 'k', 'PERSIST')]) {
      expect(absoluteExpiry(c.args[0]!.toString(), c, 1_000)).toBe(c.args);
    }
  });

  it('makes GETEX EX absolute', () => {
    expect(text(absoluteExpiry('GETEX', cmd('GETEX', 'k', 'EX', '3'), 1_000))).toEqual(['GETEX', 'k', 'PXAT', '4000']);
  });
});
