import { describe, expect, it } from 'vitest';
import { TIMELINE, renderHtml, renderJson, renderMarkdown, timelineScale, timelineX } from '../../src/core/report/index.js';
import { detailLabel, detailTree } from '../../src/core/report/detail-table.js';
import type { RestoreReport, StepResult } from '../../src/core/restore/types.js';
import { Secret } from '../../src/core/secret.js';
import { unbalancedTags } from '../helpers/html-check.js';

const t0 = Date.parse('2026-11-21T09:30:00.000Z');
const at = (ms: number): string => new Date(t0 + ms).toISOString();

const SECRETS = ['hunter2-redis-password', 'plain-text-token-abc', 'k-webhook-secret-123', 'gw-secret-in-evidence'];

function step(id: string, component: string, status: StepResult['status'], from: number, to: number, extra: Partial<StepResult> = {}): StepResult {
  return { id, component, action: 'restore', status, startedAt: at(from), finishedAt: at(to), durationMs: to - from, details: {}, checks: [], ...extra };
}

/** A 2 s drill against a 15 min objective, with nested details, evidence and secrets in them. */
function shortDrill(): RestoreReport {
  return {
    format: 'tykdr-restore-report/1', id: '20261121T093000Z-abc123', kind: 'drill',
    plan: { name: 'full', file: 'plans/full.yaml', version: 1 },
    snapshot: { id: '20261121T090000Z-000001', created_at: at(-1_800_000), location: '/srv/store' },
    host: 'dr-1', tool_version: '0.1.0', dry_run: false,
    incident_at: at(0), started_at: at(0), finished_at: at(2000), status: 'succeeded',
    steps: [
      step('stage', 'snapshot', 'ok', 0, 300, { details: { artifacts: ['redis', 'config'] } }),
      step('redis', 'redis', 'ok', 300, 1500, {
        details: {
          redis: {
            target: '127.0.0.1:40001', keys_restored: 302, restore_ms: 24, password: new Secret(SECRETS[0]!), auth_token: SECRETS[1],
            restored: { must: 302, should: 0, other: 5 },
            databases: { 0: { must: { actual: 302, expected: 302 } } },
          },
        },
        checks: [{
          name: 'redis-key-counts', status: 'passed', detail: '302 keys', finishedAt: at(1400), durationMs: 30,
          evidence: { expected_total: 302, mismatches: [{ key: 'apikey-1', reason: 'ttl' }], webhook: { url: 'hooks.example/dr', secret: SECRETS[2] } },
        }],
      }),
      step('gateway', 'gateway', 'ok', 1500, 2000, {
        checks: [
          { name: 'gateway-key-probe', status: 'passed', detail: 'canary served', finishedAt: at(1200 + 500), durationMs: 40, evidence: { gateway_secret: SECRETS[3], status: 200 } },
          { name: 'gateway-hello', status: 'passed', detail: 'hello ok', finishedAt: at(1900), durationMs: 20 },
        ],
      }),
    ],
    rto: { tier: 'critical', objectiveSeconds: 900, achievedSeconds: 1.9, met: true, last_verified_at: at(1900), service_restored_seconds: 1.7, service_restored_at: at(1700) },
    rpo: { redis: { tier: 'critical', objectiveSeconds: 300, achievedSeconds: 1800, met: false, consistent_at: at(-1_800_000) } },
    warnings: [],
    verdict: { passed: false, missed: ['RPO redis 30m against 5m (critical)'], not_proven: [] },
  };
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const attr = (tag: string, name: string): number => Number(new RegExp(` ${name}="([^"]+)"`).exec(tag)?.[1]);

describe('step details as labelled tables', () => {
  it('labels keys for people and keeps nesting as sub-tables and grids', () => {
    expect(detailLabel('keys_restored')).toBe('Keys restored');
    expect(detailLabel('timeToReadyMs')).toBe('Time to ready');
    const tree = detailTree({ redis: { keys_restored: 3, restored: { must: 1, should: 2, other: 0 }, list: [{ a: 1 }, { a: 2 }] } });
    expect(tree.kind).toBe('table');
    const redis = tree.kind === 'table' ? tree.rows[0]!.value : undefined;
    expect(redis?.kind).toBe('table');
    if (redis?.kind !== 'table') return;
    expect(redis.rows.map((r) => [r.label, r.value.kind])).toEqual([['Keys restored', 'text'], ['List', 'grid'], ['Restored', 'grid']]);
  });

  it('HTML: a key/value table per step with the labels, nested tables, no JSON', () => {
    const html = renderHtml(shortDrill());
    expect(html).toContain('<th scope="row" data-key="redis">Redis</th>');
    expect(html).toContain('<th scope="row" data-key="keys_restored">Keys restored</th><td>302</td>');
    expect(html).toContain('<th scope="row" data-key="restore_ms">Restore</th><td>24ms</td>');
    expect(html).toContain('<th scope="row" data-key="artifacts">Artifacts</th><td>redis, config</td>');
    // The class counts: one row with a column each.
    expect(html).toMatch(/<th scope="col" data-key="must">Must<\/th><th scope="col" data-key="other">Other<\/th>/);
    // Nested: databases > 0 > must > actual, each a table inside the cell above.
    expect(html).toMatch(/data-key="databases">Databases<\/th><td><table class="kv"><tbody><tr><th scope="row" data-key="0">0<\/th><td><table class="kv">/);
    expect(html).toContain('<summary>Evidence: <code>redis-key-counts</code></summary>');
    expect(html).toMatch(/<th scope="col" data-key="reason">Reason<\/th><th scope="col" data-key="key">Key<\/th><\/tr><\/thead><tbody><tr><td>ttl<\/td><td>apikey-1<\/td>/);
    expect(html).not.toMatch(/\{&#34;|\{"[a-z_]+":/);
  });

  it('Markdown: Field | Value tables, nested labels joined with ›, no JSON', () => {
    const md = renderMarkdown(shortDrill());
    expect(md).toContain('#### What it did');
    expect(md).toContain('**Redis**\n\n| Field | Value |\n|---|---|\n| Auth token | \\[redacted\\] |\n');
    expect(md).toContain('| Target | 127.0.0.1:40001 |');
    expect(md).toContain('| Keys restored | 302 |');
    expect(md).toContain('| Restored › Must | 302 |');
    expect(md).toContain('| Databases › 0 › Must › Actual | 302 |');
    expect(md).toContain('**Mismatches**\n\n| Reason | Key |\n|---|---|\n| ttl | apikey-1 |');
    expect(md).not.toMatch(/\{"[a-z_]+":/);
  });

  it('never shows a secret: Secret objects and text under secret-named keys read [redacted]', () => {
    const r = shortDrill();
    const html = renderHtml(r);
    const md = renderMarkdown(r);
    for (const s of SECRETS) {
      expect(html).not.toContain(s);
      expect(md).not.toContain(s);
    }
    expect(html).toContain('<th scope="row" data-key="password">Password</th><td>[redacted]</td>');
    expect(html).toContain('<th scope="row" data-key="auth_token">Auth token</th><td>[redacted]</td>');
    expect(md).toContain('| Secret | \\[redacted\\] |');
    // The Secret type redacts itself in the JSON record too.
    expect(renderJson(r)).not.toContain(SECRETS[0]);
  });
});

describe('the timeline on the real time scale', () => {
  it('a 2 s drill fills the axis; the 15 min objective is drawn past a labelled break', () => {
    const r = shortDrill();
    const scale = timelineScale(r);
    expect(scale.objectiveBeyond).toBe(900_000);
    expect(scale.leftBreak).toBe(false);
    expect(scale.to).toBeLessThan(3000);
    const html = renderHtml(r);
    const x = timelineX(r);
    // The gateway bar (1.5 s to 2 s) is a real width, not a sliver.
    const bar = /<rect class="bar ok"[^>]*><title>gateway:/.exec(html)![0];
    expect(attr(bar, 'width')).toBeGreaterThan(60);
    expect(attr(bar, 'x')).toBeCloseTo(x(1500), 1);
    const objective = /<line data-role="rto-objective"[^>]*>/.exec(html)![0];
    expect(attr(objective, 'x1')).toBeGreaterThan(x(2000));
    expect(attr(objective, 'x1')).toBeLessThanOrEqual(TIMELINE.right);
    expect(count(html, /<g data-role="axis-break">/g)).toBe(1);
    expect(html).toMatch(/data-role="break-label">15m<\/text>/);
    expect(html).toContain('RTO objective 15m (critical), beyond the axis break');
    // Service restored and all checks done, where they happened.
    expect(attr(/<line data-role="service-restored"[^>]*>/.exec(html)![0], 'x1')).toBeCloseTo(x(1700), 1);
    expect(attr(/<line data-role="rto-achieved"[^>]*>/.exec(html)![0], 'x1')).toBeCloseTo(x(1900), 1);
    expect(html).toContain('Service restored 1.70s');
    expect(html).toContain('All checks done 1.90s: RTO MET');
  });

  it('a long wait before a short run is behind a break; a near objective is drawn to scale', () => {
    const r = shortDrill();
    r.incident_at = at(-600_000); // incident 10 min before the 2 s run
    r.rto = { ...r.rto, objectiveSeconds: 1200, achievedSeconds: 601.9, service_restored_seconds: 601.7 };
    const scale = timelineScale(r);
    expect(scale.leftBreak).toBe(true);
    expect(scale.objectiveBeyond).toBe(1_200_000);
    const near = shortDrill();
    near.rto = { ...near.rto, objectiveSeconds: 2.5 };
    const s2 = timelineScale(near);
    expect(s2.objectiveBeyond).toBeNull();
    expect(s2.to).toBe(2500);
    const html = renderHtml(near);
    expect(html).not.toContain('data-role="axis-break"');
    expect(attr(/<line data-role="rto-objective"[^>]*>/.exec(html)![0], 'x1')).toBeCloseTo(TIMELINE.right, 1);
  });

  it('Markdown draws the same scale as text bars with the objective and the moments', () => {
    const md = renderMarkdown(shortDrill());
    const block = /## Timeline\n\n```text\n([^]*?)\n```/.exec(md)![1]!;
    const lines = block.split('\n');
    expect(lines[0]).toMatch(/^1\. stage\s+OK\s+\|█+\s+≈\s+\|$/);
    expect(lines[2]).toMatch(/^3\. gateway\s+OK\s+\|\s+█+\s*≈\s+\|$/);
    expect(lines[3]).toMatch(/S.*D.*≈.*O/);
    expect(lines[4]).toMatch(/incident.*\+2\.\d+s.*15m/);
    expect(md).toContain('- O RTO objective 15m (critical), beyond the axis break ≈, not to scale');
    expect(md).toContain('- S service restored +1.70s');
    expect(md).toContain('- D all checks done +1.90s: RTO MET');
  });
});

describe('the page', () => {
  it('is well formed, self-contained, and has text alternatives for the timeline', () => {
    for (const r of [shortDrill(), { ...shortDrill(), steps: [], rto: { ...shortDrill().rto, achievedSeconds: null, met: false } }]) {
      const html = renderHtml(r);
      expect(unbalancedTags(html)).toEqual([]);
      expect(html).not.toMatch(/<script|<link|\bsrc=|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
      expect(html).toMatch(/<svg[^>]*role="img"[^>]*aria-labelledby="tl-title tl-desc"/);
      expect(html).toContain('<summary>Timeline as a table</summary>');
      expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
      expect(html).toContain('@media print');
      expect(html).toContain('@media (max-width:640px)');
    }
  });

  it('the tag checker finds what it is for', () => {
    expect(unbalancedTags('<div><p>x</div>')).not.toEqual([]);
    expect(unbalancedTags('<table><tr><td>x</td></tr>')).toEqual(['never closed: table']);
    expect(unbalancedTags('<svg><line x1="1"/><g><title>a</title></g></svg><br>')).toEqual([]);
  });
});
