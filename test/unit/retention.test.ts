import { describe, expect, it } from 'vitest';
import { bucketOf, isoWeek } from '../../src/core/retention/buckets.js';
import { planRetention, type RetentionInput, type RetentionPolicy } from '../../src/core/retention/policy.js';

/** Every rule off: each case turns on what it tests. */
const NONE: RetentionPolicy = { keepLast: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' };

interface Snap {
  /** A short label for the case table; the id is built from the time (or `idTime`) and `suffix`. */
  l: string;
  /** Manifest time (createdAt). */
  t: string;
  /** Time in the id, when it differs from the manifest time. */
  idTime?: string;
  suffix?: string;
  c?: string[];
  incomplete?: boolean;
  /** Not complete: its manifest is there, damaged (malformed) or in a newer format. */
  damaged?: boolean;
  newerFormat?: boolean;
}

interface Case {
  name: string;
  policy: Partial<RetentionPolicy>;
  now?: string;
  snaps: Snap[];
  drill?: string[];
  keep: string[];
  /** Substrings expected among a snapshot's reasons. */
  reasons?: Record<string, string[]>;
}

const stamp = (iso: string) => iso.replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function toInput(s: Snap, i: number): RetentionInput {
  const suffix = s.suffix ?? (0xa00000 + i).toString(16);
  return {
    id: `${stamp(s.idTime ?? s.t)}-${suffix}`,
    complete: !s.incomplete && !s.damaged && !s.newerFormat,
    createdAt: new Date(s.t),
    components: s.c ?? ['config'],
    ...(s.damaged ? { damaged: true } : {}),
    ...(s.newerFormat ? { newerFormat: true } : {}),
  };
}

/** Daily snapshots at 09:00Z from a start day, newest last. */
function days(from: string, n: number, prefix = 'd'): Snap[] {
  return Array.from({ length: n }, (_, i) => ({ l: `${prefix}${i}`, t: new Date(Date.parse(`${from}T09:00:00Z`) + i * 86_400_000).toISOString() }));
}

const cases: Case[] = [
  {
    name: 'keepLast keeps the N newest by manifest time',
    policy: { keepLast: 3 },
    snaps: days('2026-11-01', 5),
    keep: ['d2', 'd3', 'd4'],
    reasons: { d4: ['last 1 of 3'], d2: ['last 3 of 3'] },
  },
  {
    name: 'keepLast orders by manifest time, never by id',
    policy: { keepLast: 1 },
    snaps: [
      { l: 'old-id-new-time', t: '2026-11-20T12:00:00Z', idTime: '2026-11-01T00:00:00Z' },
      { l: 'new-id-old-time', t: '2026-11-10T12:00:00Z', idTime: '2026-11-30T00:00:00Z' },
    ],
    keep: ['old-id-new-time'],
  },
  {
    name: 'daily keeps the newest of each day',
    policy: { daily: 2 },
    snaps: [
      { l: 'a', t: '2026-11-19T01:00:00Z' },
      { l: 'b', t: '2026-11-19T23:59:59Z' },
      { l: 'c', t: '2026-11-20T00:00:00Z' },
      { l: 'd', t: '2026-11-20T12:00:00Z' },
    ],
    keep: ['b', 'd'],
    reasons: { b: ['daily 2026-11-19'], d: ['daily 2026-11-20'] },
  },
  {
    name: 'daily counts only days that have a snapshot (gaps are skipped)',
    policy: { daily: 3 },
    snaps: [
      { l: 'day1', t: '2026-11-01T09:00:00Z' },
      { l: 'day2', t: '2026-11-02T09:00:00Z' },
      { l: 'day5', t: '2026-11-05T09:00:00Z' },
      { l: 'day9', t: '2026-11-09T09:00:00Z' },
    ],
    keep: ['day2', 'day5', 'day9'],
  },
  {
    name: 'hourly keeps the newest in each of the last N hours',
    policy: { hourly: 2 },
    snaps: [
      { l: 'h8', t: '2026-11-20T08:59:00Z' },
      { l: 'h9a', t: '2026-11-20T09:05:00Z' },
      { l: 'h9b', t: '2026-11-20T09:55:00Z' },
      { l: 'h10', t: '2026-11-20T10:00:00Z' },
    ],
    keep: ['h9b', 'h10'],
    reasons: { h10: ['hourly 2026-11-20T10'], h9b: ['hourly 2026-11-20T09'] },
  },
  {
    name: 'weekly uses ISO weeks: Sunday and the next Monday are different weeks',
    policy: { weekly: 2 },
    snaps: [
      { l: 'sat', t: '2026-11-14T09:00:00Z' },
      { l: 'sun', t: '2026-11-15T09:00:00Z' },
      { l: 'mon', t: '2026-11-16T09:00:00Z' },
    ],
    keep: ['sun', 'mon'],
    reasons: { sun: ['weekly 2026-W46'], mon: ['weekly 2026-W47'] },
  },
  {
    name: 'weekly across a year end: 2026-W53 spans 28 Dec 2026 to 3 Jan 2027',
    policy: { weekly: 2 },
    snaps: [
      { l: 'w52', t: '2026-12-27T09:00:00Z' },
      { l: 'dec28', t: '2026-12-28T09:00:00Z' },
      { l: 'jan3', t: '2027-01-03T09:00:00Z' },
      { l: 'jan4', t: '2027-01-04T09:00:00Z' },
    ],
    keep: ['jan3', 'jan4'],
    reasons: { jan3: ['weekly 2026-W53'], jan4: ['weekly 2027-W01'] },
  },
  {
    name: 'monthly keeps the newest of each month',
    policy: { monthly: 2 },
    snaps: [
      { l: 'sep', t: '2026-09-30T23:00:00Z' },
      { l: 'oct1', t: '2026-10-01T00:00:00Z' },
      { l: 'oct31', t: '2026-10-31T23:59:59Z' },
      { l: 'nov', t: '2026-11-01T00:00:00Z' },
    ],
    keep: ['oct31', 'nov'],
    reasons: { oct31: ['monthly 2026-10'] },
  },
  {
    name: 'yearly keeps the newest of each year',
    policy: { yearly: 5 },
    snaps: [
      { l: 'y24', t: '2024-06-01T00:00:00Z' },
      { l: 'y25a', t: '2025-01-01T00:00:00Z' },
      { l: 'y25b', t: '2025-12-31T23:59:59Z' },
      { l: 'y26', t: '2026-01-01T00:00:00Z' },
    ],
    keep: ['y24', 'y25b', 'y26'],
    reasons: { y25b: ['yearly 2025'] },
  },
  {
    name: 'rules combine, and a snapshot kept by several lists every reason',
    policy: { keepLast: 1, daily: 2, monthly: 3 },
    snaps: [
      { l: 'oct', t: '2026-10-15T09:00:00Z' },
      { l: 'nov18', t: '2026-11-18T09:00:00Z' },
      { l: 'nov19', t: '2026-11-19T09:00:00Z' },
      { l: 'nov20', t: '2026-11-20T09:00:00Z' },
    ],
    keep: ['oct', 'nov19', 'nov20'],
    reasons: { nov20: ['last 1 of 1', 'daily 2026-11-20', 'monthly 2026-11'], nov19: ['daily 2026-11-19'], oct: ['monthly 2026-10'], nov18: ['no retention rule keeps it'] },
  },
  {
    name: 'keepWithin keeps every complete snapshot newer than now - d',
    policy: { keepWithin: '2d' },
    now: '2026-11-21T09:00:00Z',
    snaps: [
      { l: 'old', t: '2026-11-19T08:59:59Z' },
      { l: 'edge', t: '2026-11-19T09:00:00Z' },
      { l: 'in1', t: '2026-11-19T09:00:01Z' },
      { l: 'in2', t: '2026-11-21T08:00:00Z' },
    ],
    keep: ['in1', 'in2'],
    reasons: { in1: ['within 2d'] },
  },
  {
    name: 'guard: the newest complete snapshot of every component is kept',
    policy: { keepLast: 1 },
    snaps: [
      { l: 'full-old', t: '2026-11-01T09:00:00Z', c: ['redis', 'config'] },
      { l: 'full', t: '2026-11-02T09:00:00Z', c: ['redis', 'config'] },
      { l: 'cfg1', t: '2026-11-03T09:00:00Z', c: ['config'] },
      { l: 'cfg2', t: '2026-11-04T09:00:00Z', c: ['config'] },
    ],
    keep: ['full', 'cfg2'],
    reasons: { full: ['newest complete snapshot of component redis'], cfg2: ['last 1 of 1', 'newest complete snapshot of component config'] },
  },
  {
    name: 'guard: components of incomplete snapshots do not count',
    policy: {},
    now: '2026-11-04T10:00:00Z',
    snaps: [
      { l: 'redis-ok', t: '2026-11-01T09:00:00Z', c: ['redis'] },
      { l: 'redis-broken', t: '2026-11-04T09:00:00Z', c: ['redis'], incomplete: true },
    ],
    keep: ['redis-ok', 'redis-broken'],
    reasons: { 'redis-ok': ['newest complete snapshot of component redis'], 'redis-broken': ['incomplete, not older than 1d'] },
  },
  {
    name: 'guard: the newest snapshot that passed a drill is kept (only the newest)',
    policy: { keepLast: 1 },
    snaps: days('2026-11-01', 5),
    drill: ['d0', 'd1'],
    keep: ['d1', 'd4'],
    reasons: { d1: ['newest snapshot that passed a drill'], d0: ['no retention rule keeps it'] },
  },
  {
    name: 'guard: a drill pass on an incomplete snapshot does not count',
    policy: {},
    now: '2026-11-10T00:00:00Z',
    snaps: [
      { l: 'ok', t: '2026-11-01T09:00:00Z' },
      { l: 'drilled-then-broken', t: '2026-11-02T09:00:00Z', incomplete: true },
    ],
    drill: ['drilled-then-broken'],
    keep: ['ok'],
    reasons: { 'drilled-then-broken': ['incomplete, older than 1d'] },
  },
  {
    name: 'every rule at zero: only the guards keep anything',
    policy: {},
    snaps: days('2026-11-01', 4),
    keep: ['d3'],
  },
  {
    name: 'incomplete snapshots: removed past the grace, kept within it, never counted by keepLast',
    policy: { keepLast: 1, incompleteGrace: '6h' },
    now: '2026-11-20T12:00:00Z',
    snaps: [
      { l: 'done', t: '2026-11-19T09:00:00Z' },
      { l: 'stale', t: '2026-11-20T05:59:59Z', incomplete: true },
      { l: 'running', t: '2026-11-20T11:00:00Z', incomplete: true },
    ],
    keep: ['done', 'running'],
    reasons: { done: ['last 1 of 1'], stale: ['incomplete, older than 6h'], running: ['a backup may still be writing it'] },
  },
  {
    name: 'a manifest that is there is no unfinished backup: a newer format or a damaged one is kept past the grace, never counted',
    policy: { keepLast: 1, incompleteGrace: '6h' },
    now: '2026-11-20T12:00:00Z',
    snaps: [
      { l: 'done', t: '2026-11-19T09:00:00Z' },
      { l: 'newer', t: '2026-11-10T09:00:00Z', newerFormat: true },
      { l: 'damaged', t: '2026-11-11T09:00:00Z', damaged: true },
      { l: 'stale', t: '2026-11-12T09:00:00Z', incomplete: true },
    ],
    keep: ['done', 'newer', 'damaged'],
    reasons: { newer: ['prune it with the tykdr that wrote it'], damaged: ['kept as evidence'], stale: ['incomplete, older than 6h'] },
  },
  {
    name: 'ties on manifest time: the larger id counts as newer',
    policy: { keepLast: 1 },
    snaps: [
      { l: 'a', t: '2026-11-20T09:00:00Z', suffix: 'aaaaaa' },
      { l: 'b', t: '2026-11-20T09:00:00Z', suffix: 'bbbbbb' },
    ],
    keep: ['b'],
  },
  {
    name: 'ties in a bucket: the newest by milliseconds wins',
    policy: { daily: 1 },
    snaps: [
      { l: 'later', t: '2026-11-20T09:00:00.900Z', suffix: '000001' },
      { l: 'earlier', t: '2026-11-20T09:00:00.100Z', suffix: 'ffffff' },
    ],
    keep: ['later'],
  },
  {
    name: 'no snapshots: nothing to decide',
    policy: { keepLast: 3 },
    snaps: [],
    keep: [],
  },
];

function run(c: Case, order: 'given' | 'reversed' = 'given') {
  const inputs = c.snaps.map(toInput);
  const label = new Map(inputs.map((s, i) => [s.id, c.snaps[i]!.l]));
  const idOf = new Map(inputs.map((s, i) => [c.snaps[i]!.l, s.id]));
  const now = new Date(c.now ?? '2026-12-01T00:00:00Z');
  const drillPassed = new Set((c.drill ?? []).map((l) => idOf.get(l)!));
  const list = order === 'given' ? inputs : [...inputs].reverse();
  const decisions = planRetention(list, { ...NONE, ...c.policy }, { now, drillPassed });
  return { decisions, label };
}

describe('planRetention', () => {
  it.each(cases)('$name', (c) => {
    const { decisions, label } = run(c);
    expect(decisions).toHaveLength(c.snaps.length);
    const kept = decisions.filter((d) => d.keep).map((d) => label.get(d.id)!);
    expect(kept.sort()).toEqual([...c.keep].sort());
    for (const d of decisions) expect(d.reasons.length, `${label.get(d.id)} has a reason`).toBeGreaterThan(0);
    for (const [l, expected] of Object.entries(c.reasons ?? {})) {
      const d = decisions.find((x) => label.get(x.id) === l)!;
      for (const e of expected) expect(d.reasons.join(' | '), l).toContain(e);
    }
    // Input order never matters.
    expect(run(c, 'reversed').decisions).toEqual(decisions);
  });

  it('returns decisions newest first', () => {
    const { decisions, label } = run(cases[0]!);
    expect(decisions.map((d) => label.get(d.id))).toEqual(['d4', 'd3', 'd2', 'd1', 'd0']);
  });

  it('gives the same answer in every time zone', () => {
    const c: Case = {
      name: 'tz',
      policy: { hourly: 3, daily: 3, weekly: 2, monthly: 2 },
      snaps: [
        { l: 'a', t: '2026-11-29T23:30:00Z' },
        { l: 'b', t: '2026-11-30T00:30:00Z' },
        { l: 'c', t: '2026-11-30T23:59:00Z' },
        { l: 'd', t: '2026-12-01T00:01:00Z' },
      ],
      keep: [],
    };
    const saved = process.env.TZ;
    const results: string[] = [];
    try {
      for (const tz of ['UTC', 'Pacific/Kiritimati', 'America/Los_Angeles', 'Asia/Kolkata']) {
        process.env.TZ = tz;
        results.push(JSON.stringify(run(c).decisions));
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
    expect(new Set(results).size).toBe(1);
    const { decisions, label } = run(c);
    const reasons = Object.fromEntries(decisions.map((d) => [label.get(d.id), d.reasons]));
    expect(reasons.d).toContain('daily 2026-12-01');
    expect(reasons.d).toContain('monthly 2026-12');
    expect(reasons.c).toContain('daily 2026-11-30');
    expect(reasons.c).toContain('monthly 2026-11');
    expect(reasons.a).toContain('daily 2026-11-29');
    // 29 Nov 2026 is a Sunday: a and b fall in different ISO weeks.
    expect(reasons.a).toContain('weekly 2026-W48');
  });

  it('rejects a policy whose durations do not parse', () => {
    expect(() => planRetention([], { ...NONE, incompleteGrace: 'soon' }, { now: new Date(), drillPassed: new Set() })).toThrow(/incompleteGrace "soon" is not a duration/);
  });
});

describe('retention buckets', () => {
  it.each([
    ['2026-01-01T00:00:00Z', 2026, 1], // a Thursday: week 1
    ['2025-12-29T00:00:00Z', 2026, 1], // Monday of 2026-W01
    ['2025-12-28T23:59:59Z', 2025, 52],
    ['2026-12-31T12:00:00Z', 2026, 53],
    ['2027-01-03T23:59:59Z', 2026, 53], // Sunday still in 2026-W53
    ['2027-01-04T00:00:00Z', 2027, 1],
    ['2021-01-03T00:00:00Z', 2020, 53],
    ['2024-12-30T00:00:00Z', 2025, 1],
  ])('ISO week of %s is %i-W%i', (t, year, week) => {
    expect(isoWeek(new Date(t))).toEqual({ year, week });
  });

  it('names buckets in UTC', () => {
    const t = new Date('2026-11-20T09:42:00Z');
    expect(['hourly', 'daily', 'weekly', 'monthly', 'yearly'].map((k) => bucketOf(k as never, t))).toEqual([
      '2026-11-20T09',
      '2026-11-20',
      '2026-W47',
      '2026-11',
      '2026',
    ]);
  });
});
