import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENT_KINDS, openSources } from '../../src/backends/registry.js';
import { isAbortError, TykdrError } from '../../src/core/errors.js';
import type { Source } from '../../src/core/interfaces/source.js';
import { KIND_FIXTURES, type KindFixture } from '../helpers/kind-fixtures.js';

/**
 * The Source contract (src/core/interfaces/source.ts), identical for every component kind of the registry
 * (src/backends/registry.ts), each against its real server through a fixture of test/helpers/kind-fixtures.ts.
 */

/** Generous bound on how long an aborted stream may take to end: a hang fails the test instead of the run. */
const ABORT_BOUND_MS = 15_000;

/** Reads a stream to its end: its byte count, or the error it ended with. */
async function drain(stream: Readable): Promise<{ bytes: number } | { error: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes };
  } catch (error) {
    return { error };
  }
}

/** The promise's value, or 'still running' when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}

function expectNoSecret(text: string, secrets: string[]): void {
  for (const s of secrets) expect(text, 'a secret of the config leaked').not.toContain(s);
}

it('every component kind of the registry has a conformance fixture', () => {
  expect(Object.keys(KIND_FIXTURES).sort()).toEqual([...COMPONENT_KINDS].sort());
});

for (const kind of COMPONENT_KINDS) {
  describe(`${kind} source conformance`, () => {
    let fx: KindFixture;
    let sources: Source[];

    beforeAll(async () => {
      const make = KIND_FIXTURES[kind];
      if (!make) throw new Error(`no conformance fixture for component kind "${kind}": add one to test/helpers/kind-fixtures.ts`);
      fx = make();
      await fx.start();
      sources = await openSources(fx.component());
    });

    afterAll(async () => {
      await fx?.stop();
    });

    it('the component yields at least one source of its kind, named after the component', () => {
      expect(sources.length).toBeGreaterThan(0);
      const main = sources.find((s) => s.configName === undefined);
      expect(main?.component).toBe(fx.component().name);
      expect(main?.kind).toBe(kind);
      for (const s of sources) expect(s.configName ?? s.component).toBe(fx.component().name);
    });

    it('check() resolves against a healthy server, and again', async () => {
      for (const s of sources) {
        await expect(s.check()).resolves.toBeUndefined();
        await expect(s.check()).resolves.toBeUndefined();
      }
    });

    it('open() streams to a clean end; finish() returns JSON-serialisable facts without the secrets', async () => {
      for (const s of sources) {
        const artifact = await s.open();
        expect(artifact.format).toMatch(/^[a-z0-9-]+$/);
        expect(Number.isNaN(artifact.consistentAt.getTime())).toBe(false);
        const drained = await drain(artifact.stream);
        expect(drained).toEqual({ bytes: expect.any(Number) });
        expect((drained as { bytes: number }).bytes).toBeGreaterThan(0);
        const facts = await artifact.finish();
        const json = JSON.stringify(facts);
        expect(JSON.parse(json)).toEqual(facts);
        expect(Object.keys(facts.source).length).toBeGreaterThan(0);
        expectNoSecret(json, fx.secrets);
      }
    });

    it('aborting the signal after open() ends the stream with an AbortError', async () => {
      for (const s of sources) {
        const ac = new AbortController();
        const artifact = await s.open(ac.signal);
        ac.abort();
        const ended = await within(drain(artifact.stream), ABORT_BOUND_MS);
        if (ended === 'still running') artifact.stream.destroy();
        expect(ended, `the stream did not end within ${ABORT_BOUND_MS / 1000} s of the abort`).not.toBe('still running');
        expect(ended, 'the stream ended normally although the signal aborted').toHaveProperty('error');
        const error = (ended as { error: unknown }).error;
        expect(isAbortError(error), `ended with ${String(error)} instead of an AbortError`).toBe(true);
      }
    });

    it('a source that cannot be reached rejects check() with a sourceUnreachable error naming the component and a fix', async () => {
      const c = fx.unreachableSource();
      const unreachable = await openSources(c);
      expect(unreachable.length).toBeGreaterThan(0);
      for (const s of unreachable) {
        const err = await within(s.check().then(() => 'resolved', (e: unknown) => e), 60_000);
        expect(err).toBeInstanceOf(TykdrError);
        const e = err as TykdrError;
        expect(e.kind, e.message).toBe('sourceUnreachable');
        expect(e.fix).toBeTruthy();
        expect(`${e.message} ${e.fix}`).toContain(c.name);
        expectNoSecret(`${e.message} ${e.fix}`, fx.secrets);
      }
    });
  });
}
