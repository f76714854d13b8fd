import { parseDuration } from '../core/duration.js';
import { badInput } from '../core/errors.js';

/** An ISO-8601 time, or a duration meaning "that long ago" (e.g. 20m). */
export function parseTimeFlag(flag: string, value: string | undefined, now: Date = new Date()): Date | undefined {
  if (value === undefined) return undefined;
  const ago = parseDuration(value);
  if (ago !== null) {
    const t = now.getTime() - ago;
    // Date holds ±8.64e15 ms; a duration reaching before 1970 is no moment any snapshot was taken at either.
    if (!Number.isFinite(t) || t < 0) {
      throw badInput(`${flag} "${value}" reaches back before 1970`, 'give a duration ago such as 20m or 3d, or an ISO time such as 2026-11-21T09:30:00Z');
    }
    return new Date(t);
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw badInput(`${flag} "${value}" is neither a time nor a duration`, `write an ISO time such as 2026-11-21T09:30:00Z, or a duration ago such as 20m`);
  }
  if (t > now.getTime() + 60_000) throw badInput(`${flag} "${value}" is in the future`, 'give the time the incident started');
  return new Date(t);
}
