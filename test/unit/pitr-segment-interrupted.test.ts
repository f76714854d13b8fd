import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { generateIdentity, parseIdentityFile } from '../../src/core/age/index.js';
import { exitCodeOf, TykdrError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { ChainWriter, stageSegment, type SegmentRecord } from '../../src/core/pitr/chain.js';

/**
 * A point-in-time segment whose download is stopped by SIGINT/SIGTERM is interrupted, not "altered or damaged": the S3
 * store gives the signal's own reason (an 'interrupted' TykdrError) to the reader, which is not an AbortError.
 */
describe('stageSegment stopped by the signal', () => {
  let dir: string;
  let store: LocalStore;
  let seg: SegmentRecord;
  const id = generateIdentity();
  const keys = { identities: parseIdentityFile(id.identity, 'test') };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-seg-int-'));
    store = new LocalStore(path.join(dir, 'store'));
    const chain = '20261121T093012Z-4f9a1c';
    const writer = new ChainWriter(
      { format: 'tykdr-chain/1', chain, base_snapshot: chain, component: 'redis', replid: 'a'.repeat(40), base_offset: 0, base_at: new Date(0).toISOString() },
      { store, compression: { algorithm: 'zstd', level: 3 }, keys: { recipients: [id.recipient] } },
    );
    const open = writer.open(1, 'a'.repeat(40), 1000);
    open.write(Buffer.from('*1\r\n$4\r\nPING\r\n'.repeat(20_000)), 20_000, 1000);
    seg = await open.close(1010);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * The store's object, given in two halves: the second never comes. The stream fails with `failure(signal)` after `ms`
   * when given, else when the signal aborts, listening from the moment get() is called (as the S3 store does: before
   * the caller's pipeline listens, so its error is the first the pipeline sees).
   */
  const halting = (failure: (signal: AbortSignal) => Error, ms?: number): Store =>
    Object.assign(Object.create(store) as Store, {
      get: async (key: string, o: { signal?: AbortSignal } = {}) => {
        const bytes = await readFile(path.join(dir, 'store', key));
        let sent = false;
        const body = new Readable({
          read() {
            if (!sent) {
              sent = true;
              this.push(bytes.subarray(0, bytes.length >> 1));
            }
          },
        });
        const signal = o.signal!;
        const fail = () => body.destroy(failure(signal));
        if (ms !== undefined) setTimeout(fail, ms);
        else signal.addEventListener('abort', fail, { once: true });
        return body;
      },
    });

  it('a stop while the segment downloads rejects as a stop (exit 130), not as an altered segment', async () => {
    const ac = new AbortController();
    const interrupted = new TykdrError('interrupted', 'interrupted by SIGTERM');
    const staging = stageSegment({ store: halting((s) => s.reason as Error), seg, keys, file: path.join(dir, 'seg.resp'), signal: ac.signal });
    setTimeout(() => ac.abort(interrupted), 50);
    const err = await staging.then(() => null, (e: unknown) => e);
    // Whichever surfaces first (the store's reason, or the pipeline's own AbortError): a stop, never "segment ... does
    // not decrypt and decompress ... the segment was altered" (an integrity error, exit 5).
    expect(err instanceof TykdrError && err.kind === 'integrityError', String(err)).toBe(false);
    expect(exitCodeOf(err)).toBe(130);
  });

  it('the same object cut short without a stop is what it says: an integrity error naming the segment', async () => {
    const cut = halting(() => Object.assign(new Error('the connection closed early'), { code: 'ECONNRESET' }), 50);
    const staging = stageSegment({ store: cut, seg, keys, file: path.join(dir, 'seg2.resp'), signal: new AbortController().signal });
    const err = await staging.then(() => null, (e: unknown) => e as TykdrError);
    expect(err).toBeInstanceOf(TykdrError);
    expect(err!.kind).toBe('integrityError');
    expect(err!.message).toContain(`segment ${seg.name} of chain ${seg.chain} does not decrypt and decompress`);
  });
});
