import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeySet } from '../../src/backends/redis/target/key-expectation.js';

/**
 * KeySet tells a key met again (SCAN may return one twice) from a new one by a 64-bit fingerprint. Its odds (a count
 * off by one in millions) assume the fingerprint spreads key names like a uniform 64-bit value: for the sets below a
 * single false "seen" would be a one-in-ten-million event for such a value, so any is a defect of the fingerprint.
 */
describe('KeySet', () => {
  const fill = (keys: Iterable<Buffer>) => {
    const s = new KeySet();
    let fresh = 0;
    let n = 0;
    for (const k of keys) {
      n++;
      if (s.add(k)) fresh++;
    }
    return { s, fresh, n };
  };

  function* tykSessions(n: number) {
    for (let i = 0; i < n; i++) yield Buffer.from(`apikey-${randomBytes(16).toString('hex')}`);
  }
  function* counters(n: number) {
    for (let i = 0; i < n; i++) yield Buffer.from(`quota-${i}`);
  }
  function* oneByteApart(n: number) {
    const base = Buffer.from('tyk-admin-api-policies-0000000000');
    for (let i = 0; i < n; i++) {
      const k = Buffer.from(base);
      k.writeUInt32BE(i, k.length - 4);
      yield k;
    }
  }

  it('counts 500,000 random session keys, 500,000 sequential names and 500,000 names a few bytes apart as new, every one', () => {
    for (const [what, gen] of [['sessions', tykSessions], ['counters', counters], ['bytes apart', oneByteApart]] as const) {
      const { fresh, n } = fill(gen(500_000));
      expect(fresh, what).toBe(n);
    }
  });

  it('knows a key met again, and short, empty and long keys', () => {
    const s = new KeySet();
    const keys = [Buffer.alloc(0), Buffer.from('a'), Buffer.from('b'), Buffer.alloc(70_000, 1), Buffer.from('apikey-x')];
    for (const k of keys) expect(s.add(k)).toBe(true);
    for (const k of keys) expect(s.add(Buffer.from(k))).toBe(false);
  });
});
