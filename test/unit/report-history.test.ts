import { describe, expect, it } from 'vitest';
import { CHART, chartScale } from '../../src/core/drill/history-chart.js';
import { renderHistoryHtml, renderHistoryMarkdown, type HistoryPage } from '../../src/core/drill/history-render.js';
import { componentSummaries, planSummaries } from '../../src/core/drill/history-summary.js';
import { drillRecords, drillVerdict } from '../../src/core/drill/history.js';
import type { CheckResult, RestoreReport } from '../../src/core/restore/types.js';
import { unbalancedTags } from '../helpers/html-check.js';

const day = 86_400_000;
const base = Date.parse('2026-11-01T09:00:00.000Z');

function check(name: string, status: CheckResult['status']): CheckResult {
  return { name, status, detail: status, finishedAt: new Date(base).toISOString(), durationMs: 1 };
}

/** A drill report `n` days after base, with the RTO, objective and outcome given. */
function drill(n: number, plan: string, o: { rto: number | null; objective: number; outcome: 'passed' | 'failed' | 'missed' | 'notproven'; id?: string }): RestoreReport {
  const t = (ms: number): string => new Date(base + n * day + ms).toISOString();
  const gatewayChecks = o.outcome === 'notproven' ? [check('gateway-key-probe', 'skipped')] : [check('gateway-key-probe', 'passed')];
  const redisFailed = o.outcome === 'failed';
  return {
    format: 'tykdr-restore-report/1', id: o.id ?? `2026110${n}T090000Z-${plan}`, kind: 'drill',
    plan: { name: plan, file: `plans/${plan}.yaml`, version: 1 },
    snapshot: { id: `snap-${n}`, created_at: t(-60_000), location: '/srv/store' },
    host: 'dr', tool_version: '0.1.0', dry_run: false,
    incident_at: t(0), started_at: t(0), finished_at: t(5000), status: o.outcome === 'passed' || o.outcome === 'notproven' ? 'succeeded' : 'failed',
    steps: [
      { id: 'redis', component: 'redis', action: 'restore', status: redisFailed ? 'failed' : 'ok', startedAt: t(0), finishedAt: t(3000), durationMs: 3000, details: {},
        checks: [check('redis-key-counts', redisFailed ? 'failed' : 'passed')] },
      { id: 'gateway', component: 'gateway', action: 'verify', status: redisFailed ? 'skipped' : 'ok', startedAt: t(3000), finishedAt: t(5000), durationMs: 2000, details: {},
        checks: redisFailed ? [] : gatewayChecks },
    ],
    rto: { tier: 'critical', objectiveSeconds: o.objective, achievedSeconds: o.rto, met: o.rto === null ? false : o.rto <= o.objective, last_verified_at: null },
    rpo: {},
    warnings: [],
    verdict: {
      passed: o.outcome === 'passed' || o.outcome === 'notproven',
      missed: o.outcome === 'missed' ? [`RTO ${o.rto} s against ${o.objective} s (critical)`] : [],
      not_proven: o.outcome === 'notproven' ? ['gateway/gateway-key-probe'] : [],
    },
  };
}

function history(): RestoreReport[] {
  return [
    drill(1, 'full', { rto: 2.1, objective: 900, outcome: 'passed' }),
    drill(2, 'redis', { rto: 0.4, objective: 900, outcome: 'notproven' }),
    drill(3, 'full', { rto: 3.5, objective: 900, outcome: 'passed' }),
    drill(4, 'full', { rto: 3, objective: 1, outcome: 'missed' }),
    drill(5, 'redis', { rto: null, objective: 900, outcome: 'failed' }),
    drill(6, 'full', { rto: 2.4, objective: 900, outcome: 'passed', id: 'x"><script>alert(1)</script>' }),
  ];
}

function pageOf(reports: RestoreReport[], links = new Map<string, string>()): HistoryPage {
  return { drills: drillRecords(reports), location: '/srv/store', links, generatedAt: new Date(base + 7 * day), toolVersion: '0.1.0' };
}

const attr = (tag: string, name: string): number => Number(new RegExp(` ${name}="([^"]+)"`).exec(tag)?.[1]);

describe('drill verdicts and summaries', () => {
  it('names every outcome: PASSED, NOT PROVEN, MISSED, FAILED', () => {
    const records = drillRecords(history());
    expect(records.map((d) => [d.plan, d.verdict])).toEqual([
      ['full', 'PASSED'], ['redis', 'FAILED'], ['full', 'MISSED'], ['full', 'PASSED'], ['redis', 'NOT PROVEN'], ['full', 'PASSED'],
    ]);
    // A report written before verdicts existed: a failed run with the RTO missed and no failed step.
    const old = drill(1, 'full', { rto: 3, objective: 1, outcome: 'missed' }) as Partial<RestoreReport>;
    delete old.verdict;
    expect(drillVerdict(old as RestoreReport)).toBe('MISSED');
  });

  it('pass rate per plan and the last success per component', () => {
    const records = drillRecords(history());
    const full = planSummaries(records).find((p) => p.plan === 'full')!;
    expect([full.drills, full.succeeded, full.proven, full.missed, full.failed]).toEqual([4, 3, 3, 1, 0]);
    const redis = planSummaries(records).find((p) => p.plan === 'redis')!;
    expect([redis.drills, redis.succeeded, redis.notProven, redis.failed]).toEqual([2, 1, 1, 1]);
    const components = Object.fromEntries(componentSummaries(records).map((c) => [c.component, c]));
    expect(components.redis!.lastSuccess!.id).toBe('x"><script>alert(1)</script>');
    expect(components.gateway!.lastRunResult).toBe('OK');
    // Only the redis plan's drills: its gateway step was skipped or not proven, never a success.
    const onlyRedis = componentSummaries(records.filter((d) => d.plan === 'redis'));
    expect(onlyRedis.find((c) => c.component === 'gateway')!.lastSuccess).toBeNull();
    expect(onlyRedis.find((c) => c.component === 'redis')!.lastRunResult).toBe('FAILED');
  });
});

describe('the drill history page', () => {
  it('charts one series per plan with its objective line, on a log scale when RTOs and objectives are far apart', () => {
    const html = renderHistoryHtml(pageOf(history()));
    const series = [...html.matchAll(/<g class="series" data-plan="([^"]+)">/g)].map((m) => m[1]);
    expect(series).toEqual(['full', 'redis']);
    const objectives = [...html.matchAll(/<g class="objective" data-plan="([^"]+)">/g)].map((m) => m[1]);
    expect(objectives).toEqual(['full', 'redis']);
    expect(html).toContain('>full objective 15m</text>');
    expect(html).toContain('>redis objective 15m</text>');
    const scale = chartScale(drillRecords(history()));
    expect(scale.log).toBe(true);
    expect(html).toContain('RTO (log scale)');
    // The full plan's objective line steps from 15m to 1s at the drill that used a 1 s tier, and back.
    const path = /<g class="objective" data-plan="full">.*?<path d="([^"]+)"/.exec(html)![1]!;
    const ys = [...path.matchAll(/[ML][\d.]+ ([\d.]+)/g)].map((m) => Number(m[1]));
    expect(new Set(ys)).toEqual(new Set([scale.y(900), scale.y(1)]));
    // Points: the failed drill (no RTO) is a cross on the bottom band; the missed one is ringed.
    const failed = /<g class="point" data-verdict="FAILED"[^>]*>.*?<path d="M([\d.]+) ([\d.]+)/.exec(html)!;
    expect(Number(failed[2])).toBeGreaterThan(scale.y(0.01));
    expect(Number(failed[2])).toBeLessThan(CHART.bottom);
    expect(html).toMatch(/<g class="point" data-verdict="MISSED"[^>]*><title>full, [^<]*: MISSED, RTO 3s \(objective 1s\)/);
    const passed = [...html.matchAll(/<circle class="point" data-verdict="PASSED"[^>]*>/g)].map((m) => m[0]);
    expect(passed).toHaveLength(3);
    expect(attr(passed[0]!, 'cy')).toBeCloseTo(scale.y(2.1), 1);
    expect(html).toMatch(/<svg[^>]*class="chart"[^>]*role="img"[^>]*aria-describedby="drills-table"/);
    expect(html).toContain('<table id="drills-table">');
  });

  it('shows MISSED, FAILED and NOT PROVEN in the drills table, the pass rate, and links to each report', () => {
    const links = new Map([['20261104T090000Z-full', 'drill-20261104T090000Z-full.html']]);
    const html = renderHistoryHtml(pageOf(history(), links));
    expect(html).toContain('<span class="badge missed">MISSED</span>');
    expect(html).toContain('<span class="badge failed">FAILED</span>');
    expect(html).toContain('<span class="badge notproven">NOT PROVEN</span>');
    expect(html).toContain('missed: RTO 3 s against 1 s (critical)');
    expect(html).toContain('<a href="drill-20261104T090000Z-full.html" title="drill 20261104T090000Z-full"><code>20261104T090000Z-full</code></a>');
    // No local copy: the store key instead of a link.
    expect(html).toContain('<span title="drill 20261105T090000Z-redis, report in the store: reports/snap-5/drill-20261105T090000Z-redis.html"><code>20261105T090000Z-redis</code></span>');
    expect(html).toMatch(/<td>full<\/td><td class="n">4<\/td><td class="n">3<\/td><td class="n">75%<\/td>/);
    expect(html).toContain('6 drill(s): 4 succeeded (67%), 3 fully proven, 1 NOT PROVEN, 1 MISSED an objective, 1 FAILED.');
    expect(unbalancedTags(html)).toEqual([]);
    expect(html).not.toMatch(/<script|<link|\bsrc=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
    const md = renderHistoryMarkdown(pageOf(history(), links));
    expect(md).toContain('| **MISSED** |');
    expect(md).toContain('[20261104T090000Z-full](<drill-20261104T090000Z-full.html>)');
    expect(md).toContain('| full | 4 | 3 | 75% | 3 | 0 | 1 | 0 |');
    expect(md).not.toContain('<script>');
  });

  it('an empty history says so', () => {
    const html = renderHistoryHtml(pageOf([]));
    expect(html).toContain('No drills recorded.');
    expect(unbalancedTags(html)).toEqual([]);
    expect(renderHistoryMarkdown(pageOf([]))).toContain('**No drills recorded.**');
  });
});
