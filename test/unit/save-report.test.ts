import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { saveReport } from '../../src/core/restore/report-files.js';
import type { RestoreReport } from '../../src/core/restore/types.js';

const at = (ms: number): string => new Date(Date.parse('2026-12-07T04:00:00.000Z') + ms).toISOString();

function report(): RestoreReport {
  return {
    format: 'tykdr-restore-report/1', id: '20261207T040000Z-abc123', kind: 'restore',
    plan: { name: 'redis', file: 'plans/redis.yaml', version: 1 },
    snapshot: { id: '20261207T030000Z-000001', created_at: at(-3_600_000), location: 's3://b/' },
    host: 'dr-1', tool_version: '0.1.0', dry_run: false,
    incident_at: at(0), started_at: at(0), finished_at: at(2000), status: 'succeeded',
    steps: [{ id: 'redis', component: 'redis', action: 'restore', status: 'ok', startedAt: at(0), finishedAt: at(2000), durationMs: 2000, details: { redis: { keys_restored: 1_234_567 } }, checks: [] }],
    rto: { tier: 'critical', objectiveSeconds: 900, achievedSeconds: 2, met: true },
    rpo: {},
    warnings: [],
    verdict: { passed: true, missed: [], not_proven: [] },
  } as unknown as RestoreReport;
}

/** A store whose puts wait until `release()`, recording which had started; `fail` names a key whose put rejects. */
function slowStore(fail?: RegExp) {
  const started: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const store = {
    location: 'fake://store/',
    async put(key: string, body: Readable) {
      started.push(key);
      for await (const _ of body) void _;
      await gate;
      if (fail?.test(key)) throw new Error(`simulated: ${key} refused`);
      return {};
    },
  } as unknown as Store;
  return { store, started, release };
}

const { tempDir } = useCleanups();

describe('saveReport', () => {
  it('writes the three views locally and puts them in the store at once, listed in order', async () => {
    const dir = await tempDir('tykdr-save-report-');
    const s = slowStore();
    const saving = saveReport(report(), dir, s.store);
    // Every put has started before any was let finish: they run at once, not one after another.
    await expect.poll(() => s.started.length).toBe(3);
    s.release();
    const saved = await saving;
    expect(saved.stored).toEqual([
      'reports/20261207T030000Z-000001/restore-20261207T040000Z-abc123.json',
      'reports/20261207T030000Z-000001/restore-20261207T040000Z-abc123.md',
      'reports/20261207T030000Z-000001/restore-20261207T040000Z-abc123.html',
    ].map((k) => expect.stringContaining(path.basename(k))));
    expect((await readdir(dir)).sort()).toEqual(['restore-20261207T040000Z-abc123.html', 'restore-20261207T040000Z-abc123.json', 'restore-20261207T040000Z-abc123.md']);
  });

  it('a put that fails: the local files are written, and the store part says why', async () => {
    const dir = await tempDir('tykdr-save-report-');
    const s = slowStore(/\.md$/);
    const saving = saveReport(report(), dir, s.store);
    await expect.poll(() => s.started.length).toBe(3);
    s.release();
    const saved = await saving;
    expect(saved.stored).toEqual({ error: expect.stringMatching(/simulated: .*\.md refused/) });
    expect(await readdir(dir)).toHaveLength(3);
  });
});
