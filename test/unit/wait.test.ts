import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';

describe('waitFor (test helper)', () => {
  it('returns the first truthy value of the condition, polling until then', async () => {
    let n = 0;
    const v = await waitFor(async () => (++n >= 3 ? `after ${n}` : null), { timeoutMs: 1000, intervalMs: 1, what: 'three polls' });
    expect(v).toBe('after 3');
    expect(n).toBe(3);
  });

  it('fails after the timeout, naming what it waited for and the detail', async () => {
    const t = Date.now();
    const err = await waitFor(() => false, { timeoutMs: 100, intervalMs: 10, what: 'nothing', detail: () => 'state: none' }).catch((e: unknown) => e);
    expect(Date.now() - t).toBeGreaterThanOrEqual(100);
    expect((err as Error).message).toBe('timed out after 100 ms waiting for nothing\nstate: none');
  });

  it('ends at once when the condition throws', async () => {
    await expect(waitFor(() => Promise.reject(new Error('boom')), { timeoutMs: 10_000, what: 'x' })).rejects.toThrow('boom');
  });
});
