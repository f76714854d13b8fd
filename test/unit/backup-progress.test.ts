import { afterEach, describe, expect, it, vi } from 'vitest';
import { backupPrinter } from '../../src/cli/progress.js';

describe('backup progress', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says why a Redis transfer has not started yet (repl-diskless-sync-delay), once, and only while no byte moved', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const p = backupPrinter((l) => lines.push(l), false);
    p.componentStarted!('cache', 'redis');
    p.componentStarted!('fast', 'redis');
    p.componentStarted!('config', 'files');
    p.bytes!('fast', 100);
    vi.advanceTimersByTime(1600);
    const waiting = lines.filter((l) => l.includes('waiting for Redis to start the transfer'));
    expect(waiting).toEqual([
      '  cache: waiting for Redis to start the transfer (a diskless sync first waits repl-diskless-sync-delay, 5 s by default, for other replicas; a disk sync first writes the RDB)',
    ]);
    vi.advanceTimersByTime(10_000);
    expect(lines.filter((l) => l.includes('waiting for Redis')).length).toBe(1);
    p.stop();
  });
});
