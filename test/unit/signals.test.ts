import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_GRACE_MS, graceFromEnv, interruptSignal } from '../../src/cli/base-command.js';
import { TykdrError } from '../../src/core/errors.js';
import { jsonLogger } from '../../src/daemon/log.js';
import { shutdownSignals } from '../../src/daemon/service.js';

/** The signal handlers a test added, removed afterwards (they stay installed after an abort, by design). */
const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
afterEach(() => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    for (const l of process.listeners(sig)) if (!before[sig].includes(l)) process.off(sig, l);
  }
  vi.restoreAllMocks();
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('TYKDR_GRACE', () => {
  it('is seconds or a duration, 10 s when unset, and a bad value is bad input', () => {
    expect(graceFromEnv({})).toBe(DEFAULT_GRACE_MS);
    expect(graceFromEnv({ TYKDR_GRACE: '' })).toBe(10_000);
    expect(graceFromEnv({ TYKDR_GRACE: '3' })).toBe(3000);
    expect(graceFromEnv({ TYKDR_GRACE: '1.5' })).toBe(1500);
    expect(graceFromEnv({ TYKDR_GRACE: '2m' })).toBe(120_000);
    const err = (() => {
      try {
        graceFromEnv({ TYKDR_GRACE: 'soon' });
      } catch (e) {
        return e as TykdrError;
      }
    })();
    expect(err?.kind).toBe('badInput');
    expect(err?.message).toContain('TYKDR_GRACE "soon"');
  });
});

describe('interruptSignal', () => {
  it('the first signal aborts; if the process is still running after the grace it exits with 130', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { signal, dispose } = interruptSignal({ graceMs: 100 });
    process.emit('SIGTERM', 'SIGTERM');
    expect(signal.aborted).toBe(true);
    expect((signal.reason as TykdrError).kind).toBe('interrupted');
    dispose(); // the command finished its clean-up, but something keeps the process alive
    expect(exit).not.toHaveBeenCalled();
    await until('the grace to run out', () => exit.mock.calls.length > 0);
    expect(exit).toHaveBeenCalledWith(130);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('still running 0s after SIGTERM (TYKDR_GRACE): exiting now');
  });

  it('a second signal exits at once, even after dispose', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { dispose } = interruptSignal({ graceMs: 60_000 });
    process.emit('SIGINT', 'SIGINT');
    dispose();
    expect(exit).not.toHaveBeenCalled();
    process.emit('SIGINT', 'SIGINT');
    expect(exit).toHaveBeenCalledWith(130);
  });

  it('without a signal, dispose removes the handlers', () => {
    const n = process.listeners('SIGTERM').length;
    const { dispose } = interruptSignal({ graceMs: 100 });
    expect(process.listeners('SIGTERM').length).toBe(n + 1);
    dispose();
    expect(process.listeners('SIGTERM').length).toBe(n);
  });
});

describe('daemon shutdownSignals', () => {
  const quiet = () => jsonLogger({ write: () => undefined });

  it('first signal: stop; second: force, and exit after the abort grace; third: exit at once', async () => {
    const exits: number[] = [];
    const s = shutdownSignals(quiet(), 60_000, 100, (code) => exits.push(code));
    process.emit('SIGTERM', 'SIGTERM');
    expect(s.stop.aborted).toBe(true);
    expect(s.force.aborted).toBe(false);
    process.emit('SIGTERM', 'SIGTERM');
    expect(s.force.aborted).toBe(true);
    expect(exits).toEqual([]);
    await until('the abort grace to run out', () => exits.length > 0);
    expect(exits).toEqual([130]);
    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([130, 130]);
  });

  it('first signal only: exits once --grace + TYKDR_GRACE + the webhook flush have passed', async () => {
    vi.useFakeTimers();
    try {
      const exits: number[] = [];
      shutdownSignals(quiet(), 1000, 2000, (code) => exits.push(code));
      process.emit('SIGTERM', 'SIGTERM');
      vi.advanceTimersByTime(12_999);
      expect(exits).toEqual([]);
      vi.advanceTimersByTime(2);
      expect(exits).toEqual([130]);
    } finally {
      vi.useRealTimers();
    }
  });
});
