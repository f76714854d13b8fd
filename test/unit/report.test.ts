import { describe, expect, it } from 'vitest';
import { TIMELINE, renderHtml, renderJson, renderMarkdown, reportFileNames } from '../../src/core/report/index.js';
import type { CheckResult, RestoreReport, StepResult } from '../../src/core/restore/types.js';

const at = (hms: string): string => `2026-03-14T${hms}Z`;

function check(name: string, status: CheckResult['status'], finished: string, durationMs: number, detail: string,
  evidence?: Record<string, unknown>): CheckResult {
  return { name, status, detail, finishedAt: at(finished), durationMs, ...(evidence ? { evidence } : {}) };
}

function step(id: string, component: string, action: string, status: StepResult['status'], start: string, end: string,
  extra: Partial<StepResult> = {}): StepResult {
  const durationMs = Date.parse(at(end)) - Date.parse(at(start));
  return { id, component, action, status, startedAt: at(start), finishedAt: at(end), durationMs, details: {}, checks: [], ...extra };
}

/** A full restore 3 minutes after the incident: database skipped (not in the snapshot), RTO met, Redis RPO missed. */
function succeeded(): RestoreReport {
  return {
    format: 'tykdr-restore-report/1', id: '20260314T090300Z-a1b2c3', kind: 'restore',
    plan: { name: 'full', file: 'plans/full.yaml', version: 2 },
    snapshot: { id: '20260314T083900Z-9f8e7d', created_at: at('08:39:05'), location: 's3://tyk-dr/prod/' },
    host: 'dr-gw-01', tool_version: '0.1.0', dry_run: false,
    incident_at: at('09:00:00'), started_at: at('09:03:00'), finished_at: at('09:11:00'), status: 'succeeded',
    steps: [
      step('redis-restore', 'redis', 'restore-rdb', 'ok', '09:03:00', '09:05:10', {
        details: { keys_restored: 48213, bytes_written: 12901234, mode: 'replace' },
        checks: [
          check('redis-key-counts', 'passed', '09:05:09', 800, 'apikey 1200/1200, orgkey 3/3',
            { expected: { apikey: 1200, orgkey: 3 }, found: { apikey: 1200, orgkey: 3 } }),
          check('redis-sample-ttl', 'passed', '09:05:10', 1200, '50/50 sampled TTLs within 1s'),
        ],
      }),
      step('database-restore', 'database', 'restore-dump', 'skipped', '09:05:10', '09:05:10',
        { reason: 'the snapshot has no database component' }),
      step('dashboard-config', 'dashboard', 'restore-files', 'ok', '09:05:10', '09:06:40', {
        details: { files_restored: 14, bytes_written: 81234 },
        checks: [check('dashboard-health', 'passed', '09:06:40', 300, 'GET /hello 200')],
      }),
      step('gateway-reload', 'gateway', 'restart', 'ok', '09:06:40', '09:11:00', {
        details: { commands_run: ['systemctl restart tyk-gateway'], reload_ms: 4200 },
        checks: [
          check('gateway-hello', 'passed', '09:10:30', 150, 'GET /hello 200 "pass"'),
          check('gateway-key-probe', 'passed', '09:11:00', 2100, '5/5 sampled keys accepted', { sampled: 5, accepted: 5 }),
        ],
      }),
    ],
    rto: { objectiveSeconds: 900, achievedSeconds: 660, met: true, tier: 'critical', last_verified_at: at('09:11:00') },
    rpo: {
      redis: { objectiveSeconds: 300, achievedSeconds: 1260, met: false, tier: 'critical', consistent_at: at('08:39:00') },
      config: { objectiveSeconds: 300, achievedSeconds: 120, met: true, tier: 'critical', consistent_at: at('08:58:00') },
    },
    warnings: ['gateway secret differs from the snapshot (fingerprint 3f9a…); restored the snapshot\'s tyk.conf'],
  };
}

/** A drill with the incident set 10 minutes before the start: the key probe fails and the rest is skipped. */
function failed(): RestoreReport {
  return {
    format: 'tykdr-restore-report/1', id: '20260314T100000Z-d4e5f6', kind: 'drill',
    plan: { name: 'Prod & DR <script>alert(1)</script>', file: 'plans/full.yaml', version: 2 },
    snapshot: { id: '20260314T094500Z-0a0b0c', created_at: at('09:45:02'), location: '/srv/tykdr' },
    host: 'drill-<b>host</b>', tool_version: '0.1.0', dry_run: false,
    incident_at: at('09:50:00'), started_at: at('10:00:00'), finished_at: at('10:12:00'), status: 'failed',
    steps: [
      step('redis-restore', 'redis', 'restore-rdb', 'ok', '10:00:00', '10:04:00', {
        details: { keys_restored: 812 },
        checks: [check('redis-key-counts', 'passed', '10:04:00', 500, 'apikey 800/800')],
      }),
      step('gateway-verify', 'gateway', 'verify', 'failed', '10:04:00', '10:12:00', {
        reason: 'gateway key probe failed: 3 of 5 sampled keys rejected with 403',
        checks: [
          check('gateway-hello', 'passed', '10:04:30', 120, 'GET /hello 200'),
          check('gateway-key-probe', 'failed', '10:12:00', 4000, '3 of 5 keys rejected (403) & the secret differs',
            { sampled: 5, rejected: ['key-1', 'key-4', 'key-5'], note: '</pre><script>x()</script>' }),
        ],
      }),
      step('dashboard-restore', 'dashboard', 'restore-files', 'skipped', '10:12:00', '10:12:00', { reason: 'gateway-verify failed' }),
      step('dashboard-verify', 'dashboard', 'verify', 'skipped', '10:12:00', '10:12:00', { reason: 'gateway-verify failed' }),
    ],
    rto: { objectiveSeconds: 900, achievedSeconds: null, met: false, tier: 'critical', last_verified_at: null },
    rpo: { redis: { objectiveSeconds: 300, achievedSeconds: 298, met: true, tier: 'critical', consistent_at: at('09:45:02') } },
    warnings: ['gateway secret mismatch: tyk.conf secret does not match the snapshot'],
  };
}

function dryRun(): RestoreReport {
  const r = succeeded();
  return {
    ...r, id: '20260314T120000Z-0d0d0d', dry_run: true, warnings: [],
    incident_at: at('12:00:00'), started_at: at('12:00:00'), finished_at: at('12:00:02'),
    steps: [step('redis-restore', 'redis', 'restore-rdb', 'ok', '12:00:00', '12:00:02', {
      details: { would_restore_keys: 48213 },
      checks: [check('redis-key-counts', 'skipped', '12:00:02', 0, 'dry run')],
    })],
    rto: { objectiveSeconds: 900, achievedSeconds: null, met: null, tier: 'critical', last_verified_at: null },
  };
}

/** The same value with every object's keys in reverse insertion order. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]));
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const attr = (tag: string, name: string): number => Number(new RegExp(`${name}="([^"]+)"`).exec(tag)?.[1]);
const xAt = (ms: number, domainMs: number): number => TIMELINE.left + (ms / domainMs) * (TIMELINE.right - TIMELINE.left);

describe('renderMarkdown', () => {
  it('reports a succeeded restore: objectives, steps, durations, details, evidence, warnings', () => {
    const md = renderMarkdown(succeeded());
    expect(md.split('\n')[0]).toBe('# Restore report: SUCCEEDED');
    expect(md).not.toContain('DRY RUN');
    expect(md).toContain('| RTO | restore | critical | 15m | 11m | **MET** | last verification 2026-03-14 09:11:00 UTC |');
    expect(md).toContain('| RPO | redis | critical | 5m | 21m | **MISSED** | consistent at 2026-03-14 08:39:00 UTC |');
    expect(md).toContain('| RPO | config | critical | 5m | 2m | **MET** |');
    expect(md).toContain('| 1 | `redis-restore` | redis | restore-rdb | OK | 2m 10s | +3m | 2/2 passed |');
    expect(md).toContain('| 2 | `database-restore` | database | restore-dump | SKIPPED | 0ms | +5m 10s | none |');
    expect(md).toContain('| 4 | `gateway-reload` | gateway | restart | OK | 4m 20s | +6m 40s | 2/2 passed |');
    expect(md).toContain('**Reason:** the snapshot has no database component');
    expect(md).toContain('| Bytes written | 12.3 MiB (12,901,234 bytes) |');
    expect(md).toContain('| Reload | 4s |');
    expect(md).toContain('| PASSED | `gateway-key-probe` | 5/5 sampled keys accepted | 2s | +11m |');
    expect(md).toContain('<details><summary>Evidence: redis-key-counts</summary>\n\n**Expected**\n\n| Field | Value |\n|---|---|\n| Apikey | 1,200 |\n| Orgkey | 3 |');
    expect(md).not.toContain('{"expected"');
    const warning = md.indexOf('> **Warnings (1):**');
    expect(warning).toBeGreaterThan(0);
    expect(warning).toBeLessThan(md.indexOf('## Objectives'));
    expect(md).toContain('> - gateway secret differs from the snapshot');
  });

  it('puts the first failure right under the title of a failed drill, and escapes user text', () => {
    const md = renderMarkdown(failed());
    const lines = md.split('\n');
    expect(lines[0]).toBe('# DR drill report: FAILED');
    expect(lines[2]).toBe('> **Failed at step 2, `gateway-verify` (gateway):** gateway key probe failed: 3 of 5 sampled keys rejected with 403');
    expect(md).toContain('| RTO | restore | critical | 15m | not reached | **MISSED** | no verification passed |');
    expect(md).toContain('| 3 | `dashboard-restore` | dashboard | restore-files | SKIPPED |');
    expect(md).toContain('| 2 | `gateway-verify` | gateway | verify | FAILED | 8m | +14m | 1/2 passed, 1 failed |');
    expect(md).toContain('| FAILED | `gateway-key-probe` | 3 of 5 keys rejected (403) & the secret differs | 4s | +22m |');
    expect(md).toContain('**Failure:** gateway key probe failed');
    expect(md).toContain('> - gateway secret mismatch');
    expect(md).toContain('Prod & DR \\<script\\>alert(1)\\</script\\>');
    // Outside code (where text is literal) and the evidence wrappers, no raw tag survives.
    const prose = md.replace(/```text\n[^]*?\n```/g, '').replace(/`[^`\n]*`/g, '').replace(/<\/?(details|summary)>/g, '');
    expect(prose).not.toMatch(/(?<!\\)<[a-z/]/i);
    expect(md).toContain('**Host:** `drill-<b>host</b>`');
    expect(md).toContain('| Note | \\</pre\\>\\<script\\>x()\\</script\\> |');
    expect(md).toContain('| Rejected | key-1, key-4, key-5 |');
  });

  it('says DRY RUN in the title and explains it', () => {
    const md = renderMarkdown(dryRun());
    expect(md.split('\n')[0]).toBe('# Restore report: SUCCEEDED (DRY RUN)');
    expect(md).toContain('> **DRY RUN.** Nothing was restored.');
    expect(md).toContain('| RTO | restore | critical | 15m | not reached | **NOT MEASURED** |');
    expect(md).toContain('| SKIPPED | `redis-key-counts` | dry run |');
  });
});

describe('renderHtml', () => {
  it('draws one bar per step, a tick per check, and the RTO lines where they belong', () => {
    const html = renderHtml(succeeded());
    expect(count(html, /<svg\b/g)).toBe(1);
    expect(html).toMatch(/<svg[^>]*role="img"[^>]*aria-labelledby="tl-title tl-desc"/);
    expect(html).toContain('<title id="tl-title">Timeline of restore 20260314T090300Z-a1b2c3</title>');
    const bars = html.match(/<rect class="bar [a-z]+"[^>]*>/g) ?? [];
    expect(bars.map((b) => /class="bar ([a-z]+)"/.exec(b)?.[1])).toEqual(['ok', 'skipped', 'ok', 'ok']);
    expect(count(html, /<g class="tick passed">/g)).toBe(5);
    // Domain: max(finished 11m, objective 15m) = 15m (the objective is near enough to draw to scale); redis-restore runs +3m..+5m10s.
    const domain = 15 * 60_000;
    expect(attr(bars[0]!, 'x')).toBeCloseTo(xAt(3 * 60_000, domain), 1);
    expect(attr(bars[0]!, 'width')).toBeCloseTo(xAt(310_000, domain) - xAt(180_000, domain), 1);
    const objective = /<line data-role="rto-objective"[^>]*>/.exec(html)![0];
    expect(attr(objective, 'x1')).toBeCloseTo(xAt(900_000, domain), 1);
    const achieved = /<line data-role="rto-achieved"[^>]*>/.exec(html)![0];
    expect(attr(achieved, 'x1')).toBeCloseTo(xAt(660_000, domain), 1);
    expect(html).toContain('RTO objective 15m (critical)');
    expect(html).toContain('All checks done 11m: RTO MET');
    expect(html).not.toContain('data-role="axis-break"');
    expect(html).toContain('>incident</text>');
    expect(html).toContain('>14m</text>');
    expect(html).toContain('<th scope="col">Status</th>');
    expect(html).toContain('<span class="badge met">MET</span>');
    expect(html).toContain('<span class="badge missed">MISSED</span>');
    expect(html).toMatch(/<div class="banner warn"[^>]*>.*gateway secret differs/);
    expect(html).not.toMatch(/<script|<link|\bsrc=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
  });

  it('places the objective inside the axis when the run outlasts it, shows status as text, escapes user data', () => {
    const html = renderHtml(failed());
    // Incident 10 minutes before the start, the run ends at +22m: domain 22m, objective at 15m.
    const objective = /<line data-role="rto-objective"[^>]*>/.exec(html)![0];
    expect(attr(objective, 'x1')).toBeCloseTo(xAt(900_000, 22 * 60_000), 1);
    expect(html).not.toContain('data-role="rto-achieved"');
    expect(count(html, /<rect class="bar failed"/g)).toBe(1);
    expect(count(html, /<rect class="bar skipped"/g)).toBe(2);
    expect(count(html, /<g class="tick failed">/g)).toBe(1);
    expect(html).toMatch(/class="st failed">FAILED<\/text>/);
    expect(html).toMatch(/<div class="banner failed"[^>]*><p><strong>Failed at step 2, <code>gateway-verify<\/code> \(gateway\):<\/strong> gateway key probe failed/);
    expect(html).not.toMatch(/<script|<b>host/i);
    expect(html).toContain('Prod &#38; DR &#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).toContain('rejected (403) &#38; the secret differs');
    expect(html).toContain('<th scope="row" data-key="note">Note</th><td>&#60;/pre&#62;&#60;script&#62;x()');
    expect(html).toContain('drill-&#60;b&#62;host&#60;/b&#62;');
  });

  it('says DRY RUN in a badge and a banner', () => {
    const html = renderHtml(dryRun());
    expect(html).toContain('<span class="badge dry">DRY RUN</span>');
    expect(html).toContain('<strong>DRY RUN.</strong> Nothing was restored.');
    expect(html).toContain('<title>Restore report: SUCCEEDED (DRY RUN) · 20260314T120000Z-0d0d0d</title>');
  });
});

describe('renderJson and file names', () => {
  it('round-trips, ends with a newline, and does not depend on key insertion order', () => {
    for (const r of [succeeded(), failed(), dryRun()]) {
      const json = renderJson(r);
      expect(json.endsWith('}\n')).toBe(true);
      expect(JSON.parse(json)).toEqual(r);
      expect(renderJson(reverseKeys(r) as RestoreReport)).toBe(json);
    }
    expect(renderJson(succeeded()).split('\n').slice(0, 3)).toEqual(['{', '  "format": "tykdr-restore-report/1",', '  "id": "20260314T090300Z-a1b2c3",']);
  });

  it('never throws on bigints in free-form details', () => {
    const r = succeeded();
    r.steps[0]!.details = { bytes_written: 123n };
    expect(JSON.parse(renderJson(r)).steps[0].details).toEqual({ bytes_written: '123' });
    expect(renderMarkdown(r)).toContain('| Bytes written | 123 |');
  });

  it('names files <kind>-<id>.<ext> and keeps them inside the report folder', () => {
    expect(reportFileNames(failed())).toEqual({
      json: 'drill-20260314T100000Z-d4e5f6.json', markdown: 'drill-20260314T100000Z-d4e5f6.md', html: 'drill-20260314T100000Z-d4e5f6.html',
    });
    expect(reportFileNames({ ...succeeded(), id: '../../etc/x' }).html).toBe('restore-.._.._etc_x.html');
  });
});
