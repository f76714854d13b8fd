import { badInput } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Parses "90s", "15m", "1h30m", "24h", "7d" into milliseconds. Returns null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(trimmed)) return null;
  let total = 0;
  for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) total += Number(m[1]) * (UNITS[m[2]!] ?? 0);
  return total;
}

export function requireDuration(text: string, what: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw badInput(`${what} "${text}" is not a duration`, 'write it like 90s, 15m, 1h30m or 7d');
  return ms;
}

/** "1h 2m 3s"-style rendering for people. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join(' ');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/**
 * A number as `toLocaleString('en-US')` writes it (1,234,567.891: digits grouped by three, at most three decimals of
 * the number's shortest decimal form, halves rounded away from zero), without ICU: the first call of toLocaleString
 * loads ICU's number formatting, about 15 ms of every restore and drill that writes a report (measured: node -e with
 * performance.now()). A number whose shortest form is in exponent notation (under 1e-6, from 1e21) is left to
 * toLocaleString.
 */
export function formatCount(n: number): string {
  const text = String(Math.abs(n));
  if (!Number.isFinite(n) || text.includes('e')) return n.toLocaleString('en-US');
  const dot = text.indexOf('.');
  let digits = dot < 0 ? text : text.slice(0, dot) + text.slice(dot + 1, dot + 4).padEnd(3, '0');
  let intLen = dot < 0 ? text.length : dot;
  if (dot >= 0 && text.charCodeAt(dot + 4) >= 0x35) {
    // Round up the last kept decimal (a 5 or more follows it): carry through the digits.
    const d = digits.split('');
    let i = d.length - 1;
    while (i >= 0 && d[i] === '9') d[i--] = '0';
    if (i < 0) {
      d.unshift('1');
      intLen++;
    } else d[i] = String(Number(d[i]) + 1);
    digits = d.join('');
  }
  let int = digits.slice(0, intLen);
  const frac = dot < 0 ? '' : digits.slice(intLen).replace(/0+$/, '');
  for (let i = int.length - 3; i > 0; i -= 3) int = `${int.slice(0, i)},${int.slice(i)}`;
  return `${n < 0 || Object.is(n, -0) ? '-' : ''}${frac === '' ? int : `${int}.${frac}`}`;
}
