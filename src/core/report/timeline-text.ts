import type { RestoreReport } from '../restore/types.js';
import { preciseDuration, tickLabel, timelineScale } from './timeline-scale.js';
import { formatDuration } from '../duration.js';

/*
 * The Markdown timeline: a fenced text block of bars on the same scale as the HTML's SVG (see
 * timeline-scale.ts), so a plain-text reader sees the same shape. Step ids are the only report text in
 * it and sit inside a code fence, where Markdown shows them literally.
 */

const WIDTH = 50;
const BAR: Record<string, string> = { ok: '█', failed: 'X', skipped: '·' };

const since = (r: RestoreReport, iso: string): number => {
  const ms = Date.parse(iso) - Date.parse(r.incident_at);
  return Number.isFinite(ms) ? ms : 0;
};

export function textTimeline(r: RestoreReport): string[] {
  const scale = timelineScale(r);
  const col = (ms: number): number => Math.min(WIDTH - 1, Math.max(0, Math.round(scale.at(ms) * (WIDTH - 1))));
  const names = r.steps.map((s, i) => `${i + 1}. ${s.id}`.replace(/`/g, "'").slice(0, 24));
  const nameW = Math.max(8, ...names.map((n) => n.length));
  const lead = (a: string, b: string): string => `${a.padEnd(nameW)}  ${b.padEnd(8)} `;
  const lines: string[] = [];
  r.steps.forEach((s, i) => {
    const cells = Array<string>(WIDTH).fill(' ');
    for (const b of scale.breaks) cells[Math.round(b * (WIDTH - 1))] = '≈';
    const a = col(since(r, s.startedAt));
    const b = Math.max(a, col(since(r, s.finishedAt)));
    for (let c = a; c <= b; c++) cells[c] = BAR[s.status] ?? '?';
    lines.push(`${lead(names[i]!, s.status.toUpperCase())}|${cells.join('')}|`);
  });
  const marks = Array<string>(WIDTH).fill(' ');
  for (const b of scale.breaks) marks[Math.round(b * (WIDTH - 1))] = '≈';
  const legend: string[] = [];
  const objectiveMs = r.rto.objectiveSeconds * 1000;
  const put = (ms: number, ch: string, text: string): void => {
    marks[col(ms)] = ch;
    legend.push(`${ch} ${text}`);
  };
  put(objectiveMs, 'O', `RTO objective ${formatDuration(objectiveMs)} (${r.rto.tier})${scale.objectiveBeyond === null ? '' : ', beyond the axis break ≈, not to scale'}`);
  if (r.rto.service_restored_seconds != null) put(r.rto.service_restored_seconds * 1000, 'S', `service restored +${preciseDuration(r.rto.service_restored_seconds * 1000)}`);
  if (r.rto.achievedSeconds !== null) {
    const verdict = r.rto.met === true ? 'MET' : r.rto.met === false ? 'MISSED' : 'NOT MEASURED';
    put(r.rto.achievedSeconds * 1000, 'D', `all checks done +${preciseDuration(r.rto.achievedSeconds * 1000)}: RTO ${verdict}`);
  } else {
    legend.push('D all checks done: not reached');
  }
  lines.push(`${lead('', '')}|${marks.join('')}|`);
  const axis = Array<string>(WIDTH + 2).fill(' ');
  const label = (ms: number, text: string, align: 'start' | 'end'): void => {
    const c = col(ms) + 1;
    const from = align === 'start' ? c : Math.max(0, c - text.length + 1);
    for (let k = 0; k < text.length && from + k < axis.length; k++) axis[from + k] = text[k]!;
  };
  label(0, scale.leftBreak ? `incident ≈ +${tickLabel(scale.from, scale.step)}` : tickLabel(scale.from, scale.step), 'start');
  label(scale.to, `+${tickLabel(scale.to, scale.step)}`, 'end');
  if (scale.objectiveBeyond !== null) label(scale.objectiveBeyond, formatDuration(scale.objectiveBeyond), 'end');
  lines.push(`${lead('', '')}${axis.join('').trimEnd()}`);
  const fence = '```';
  return [`${fence}text`, ...lines, fence, '', ...legend.map((l) => `- ${l.replace(/[*_<>|\\[\]`]/g, '\\$&')}`),
    `- Bars: █ ok, X failed, · skipped; time since the incident${scale.breaks.length > 0 ? '; ≈ marks where the axis skips time' : ''}.`];
}
