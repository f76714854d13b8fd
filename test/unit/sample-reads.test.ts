import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PayloadSampleEntry } from '../../src/backends/redis/target/keys-inspect.js';
import { observePayloadSample, type DumpReader, type PayloadDecoder } from '../../src/backends/redis/target/keys-sample.js';
import { keyLabel } from '../../src/backends/redis/target/snapshot-sample.js';
import { MAX_COMPARED_BYTES, SAMPLE_READS_IN_FLIGHT } from '../../src/backends/redis/target/value-fingerprint.js';

/**
 * The sample's reads of the target run several at a time (each one is a round trip to a target that may be a network
 * away), bounded so that a sample of large values is not all held at once, and decodes stay one at a time (the scratch
 * server decodes into two fixed keys). The reader here is a stand-in that counts what is in flight; the reads against
 * real servers are covered by the restore suites (redis-restore, redis-keys, redis-selective).
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function entry(i: number, bytes = 100): PayloadSampleEntry {
  const payload = Buffer.alloc(Math.min(bytes, 64), i % 256);
  return {
    db: 0,
    key: Buffer.from(`apikey-${i}`),
    cls: 'must',
    expiresAtMs: null,
    type: 'string',
    bytes,
    sha256: sha(payload),
    payload: bytes <= MAX_COMPARED_BYTES ? payload : null,
  };
}

/** A DumpReader answering after a turn of the event loop, with the snapshot's own payload (or `answer`'s). */
function counting(answer: (key: string) => Buffer | null = () => null) {
  const state = { inFlight: 0, max: 0, started: [] as string[], largeAlongside: 0 };
  const read: DumpReader = async (_db, key) => {
    const k = key.toString();
    state.started.push(k);
    state.inFlight++;
    state.max = Math.max(state.max, state.inFlight);
    await new Promise((r) => setTimeout(r, 2));
    state.inFlight--;
    const i = Number(k.slice('apikey-'.length));
    return { payload: answer(k) ?? Buffer.alloc(64, i % 256), expiresAtMs: null };
  };
  return { state, read };
}

describe('observePayloadSample', () => {
  it(`reads ${SAMPLE_READS_IN_FLIGHT} keys at a time and returns the observations in the sample's order`, async () => {
    const entries = Array.from({ length: 100 }, (_, i) => entry(i));
    const { state, read } = counting();
    const obs = await observePayloadSample(entries, read, null);
    expect(state.max).toBe(SAMPLE_READS_IN_FLIGHT);
    expect(obs.map((o) => o.label)).toEqual(entries.map((e) => keyLabel(e.cls, e.key)));
    expect(obs.every((o) => o.target !== null && o.target.digest === o.snapshot.digest)).toBe(true);
  });

  it('reads a key whose snapshot value is over MAX_COMPARED_BYTES alone, after the others', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => entry(i, i % 10 === 0 ? MAX_COMPARED_BYTES + 1 : 100));
    const large = new Set(entries.filter((e) => e.bytes > MAX_COMPARED_BYTES).map((e) => e.key.toString()));
    const inFlightAtLarge: number[] = [];
    const { state, read } = counting();
    const obs = await observePayloadSample(
      entries,
      async (db, key) => {
        const p = read(db, key);
        if (large.has(key.toString())) inFlightAtLarge.push(state.inFlight);
        return p;
      },
      null,
    );
    expect(inFlightAtLarge).toEqual([1, 1, 1, 1]);
    expect(state.started.slice(-4)).toEqual([...large]);
    expect(obs).toHaveLength(40);
  });

  it('decodes differing payloads one at a time', async () => {
    const entries = Array.from({ length: 30 }, (_, i) => entry(i));
    let decoding = 0;
    let maxDecoding = 0;
    const decoder = {
      unavailable: null,
      async compare(a: Buffer, b: Buffer) {
        decoding++;
        maxDecoding = Math.max(maxDecoding, decoding);
        await new Promise((r) => setTimeout(r, 1));
        decoding--;
        const fp = (x: Buffer) => ({ type: 'string', size: x.length, digest: 'same', expiresAtMs: null });
        return [fp(a), fp(b)];
      },
    } as unknown as PayloadDecoder;
    // Every target payload differs in bytes from the snapshot's, so every key goes to the decoder.
    const { state, read } = counting(() => Buffer.from('re-encoded'));
    const obs = await observePayloadSample(entries, read, decoder);
    expect(state.max).toBe(SAMPLE_READS_IN_FLIGHT);
    expect(maxDecoding).toBe(1);
    expect(obs.every((o) => o.snapshot.digest === 'same' && o.target?.digest === 'same')).toBe(true);
  });

  it('a failed read fails the sample, and no read starts after it', async () => {
    const entries = Array.from({ length: 100 }, (_, i) => entry(i));
    const { state, read } = counting();
    const failing: DumpReader = async (db, key) => {
      if (key.toString() === 'apikey-20') throw new Error('Connection is closed.');
      return read(db, key);
    };
    await expect(observePayloadSample(entries, failing, null)).rejects.toThrow('Connection is closed.');
    expect(state.inFlight).toBe(0);
    expect(state.started.length).toBeLessThan(20 + SAMPLE_READS_IN_FLIGHT);
  });
});
