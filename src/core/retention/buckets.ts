/**
 * Calendar buckets for retention, always in UTC (the host's time zone never matters): each function
 * names the bucket an instant falls into, and the name is also what a person reads in a reason
 * ("daily 2026-11-20"). Weeks are ISO 8601 weeks (Monday first; week 1 holds the year's first Thursday).
 */
export type BucketKind = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

export const BUCKET_KINDS: readonly BucketKind[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

const DAY_MS = 86_400_000;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO week-numbering year and week of a UTC instant, e.g. 2027-01-01 (a Friday) is 2026-W53. */
export function isoWeek(t: Date): { year: number; week: number } {
  const day = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  const thursday = new Date(day + (3 - weekday) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const jan1 = Date.UTC(year, 0, 1);
  return { year, week: 1 + Math.floor((thursday.getTime() - jan1) / (7 * DAY_MS)) };
}

export function bucketOf(kind: BucketKind, t: Date): string {
  const y = pad(t.getUTCFullYear(), 4);
  const m = pad(t.getUTCMonth() + 1);
  const d = pad(t.getUTCDate());
  switch (kind) {
    case 'hourly':
      return `${y}-${m}-${d}T${pad(t.getUTCHours())}`;
    case 'daily':
      return `${y}-${m}-${d}`;
    case 'weekly': {
      const w = isoWeek(t);
      return `${pad(w.year, 4)}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${y}-${m}`;
    case 'yearly':
      return y;
  }
}
