import { describe, expect, it } from 'vitest';
import { formatCount } from '../../src/core/duration.js';

/** formatCount must write what toLocaleString('en-US') writes (reports showed that before), without loading ICU. */
describe('formatCount', () => {
  const oracle = (v: number) => v.toLocaleString('en-US');

  it('groups digits and rounds the shortest decimal form as toLocaleString does', () => {
    const cases: Array<[number, string]> = [
      [0, '0'], [-0, '-0'], [999, '999'], [1000, '1,000'], [-1000, '-1,000'], [7000774, '7,000,774'],
      [1234.5678, '1,234.568'], [1.0005, '1.001'], [0.0004999, '0'], [-0.0001, '-0'], [2.5, '2.5'],
      [999.9995, '1,000'], [999999.9996, '1,000,000'], [0.1 + 0.2, '0.3'], [4294967295.5, '4,294,967,295.5'],
      [123456789012345680000, '123,456,789,012,345,680,000'],
    ];
    for (const [v, want] of cases) {
      expect(formatCount(v), String(v)).toBe(want);
      expect(oracle(v), `oracle for ${v}`).toBe(want);
    }
  });

  it('leaves exponent-form numbers and non-finite ones to toLocaleString', () => {
    for (const v of [1e21, 5e-324, 1e-7, Number.NaN, Infinity, -Infinity]) expect(formatCount(v)).toBe(oracle(v));
  });

  it('matches toLocaleString on 100,000 random values of every magnitude', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const diffs: string[] = [];
    for (let i = 0; i < 25_000; i++) {
      const k = Math.floor(rnd() * 1e6);
      for (const v of [k / 10_000, -k / 1000 - 0.0005, rnd() * 10 ** (rnd() * 24 - 6), Math.round((rnd() - 0.5) * 10 ** (rnd() * 18))]) {
        if (formatCount(v) !== oracle(v)) diffs.push(`${v}: ${formatCount(v)} != ${oracle(v)}`);
      }
    }
    expect(diffs.slice(0, 5)).toEqual([]);
  });
});
