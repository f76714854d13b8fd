import { formatDuration } from '../duration.js';
import type { RestoreReport } from '../restore/types.js';
import { escapeHtml as esc, formatOffset, kindTitle, objectiveRows, sinceIncident, statusLabel } from './render-markdown.js';
import { preciseDuration, tickLabel, timelineScale } from './timeline-scale.js';

/** Timeline geometry in SVG user units; exported so tests can compute where a line must be. */
export const TIMELINE = { width: 1000, left: 240, right: 970, top: 66, row: 30, bar: 14 } as const;

const STATUS_CLASSES = new Set(['ok', 'failed', 'skipped', 'passed', 'succeeded', 'met', 'missed', 'dry', 'notproven']);
export const cls = (status: string): string => (STATUS_CLASSES.has(status.toLowerCase()) ? status.toLowerCase() : 'unknown');

const FILL: Record<string, string> = { ok: '#2da44e', failed: '#cf222e', skipped: '#eaeef2' };
const TICK: Record<string, string> = { passed: '#0a3d1a', failed: '#a40e26', skipped: '#6e7781' };
const COLOR = { objective: '#57606a', done: '#1a7f37', missed: '#cf222e', service: '#0969da' } as const;

const round = (n: number): number => Math.round(n * 100) / 100;
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** SVG x of a time since the incident. */
export function timelineX(r: RestoreReport): (ms: number) => number {
  const scale = timelineScale(r);
  return (ms) => round(TIMELINE.left + scale.at(ms) * (TIMELINE.right - TIMELINE.left));
}

/** A zigzag across the axis where time is left out. */
function breakGlyph(bx: number, y0: number, y1: number, title: string): string {
  return `<g data-role="axis-break"><title>${esc(title)}</title>` +
    `<rect x="${round(bx - 7)}" y="${y0}" width="14" height="${y1 - y0 + 8}" fill="#fff"/>` +
    `<path d="M${round(bx - 9)} ${y1 + 7} l6 -14 M${round(bx - 1)} ${y1 + 7} l6 -14" stroke="#57606a" stroke-width="1.5" fill="none"/></g>`;
}

/** The run on the real time scale: a bar per step, a tick per check, the objective and the measured moments. */
export function timelineSvg(r: RestoreReport): string {
  const { width, left, right, top, row, bar } = TIMELINE;
  const scale = timelineScale(r);
  const x = timelineX(r);
  const axisY = top + r.steps.length * row + 4;
  const height = axisY + 62;
  const out: string[] = [];
  const startMs = Math.max(0, sinceIncident(r, r.started_at));
  const start = x(startMs);
  if (start - left >= 4) {
    out.push(`<rect class="wait" x="${left}" y="${top - 4}" width="${round(start - left)}" height="${axisY - top + 4}" fill="#eef1f4">` +
      `<title>incident to restore start: ${formatDuration(startMs)}</title></rect>`);
    if (start - left >= 90 && !scale.leftBreak) out.push(`<text x="${round((left + start) / 2)}" y="${axisY - 6}" text-anchor="middle" class="axis">before restore start</text>`);
  }
  for (const t of scale.ticks) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${axisY}" class="grid"/>`,
      `<text x="${x(t)}" y="${axisY + 16}" text-anchor="middle" class="axis">${tickLabel(t, scale.step)}</text>`);
  }
  const mainStart = x(scale.from);
  const mainEnd = x(scale.to);
  out.push(`<line x1="${mainStart}" x2="${mainEnd}" y1="${axisY}" y2="${axisY}" class="axisline"/>`);
  if (scale.leftBreak) {
    out.push(`<line x1="${left}" x2="${left}" y1="${top - 4}" y2="${axisY}" class="grid"/>`,
      `<line x1="${left}" x2="${round(left + 12)}" y1="${axisY}" y2="${axisY}" class="axisline"/>`,
      `<text x="${left}" y="${axisY + 16}" text-anchor="start" class="axis">incident</text>`,
      breakGlyph(round((left + mainStart) / 2), top - 4, axisY, `axis break: ${formatDuration(scale.from)} from the incident to the run are not drawn to scale`));
  }
  if (scale.objectiveBeyond !== null) {
    const ox = x(scale.objectiveBeyond);
    out.push(`<line x1="${round(ox - 14)}" x2="${ox}" y1="${axisY}" y2="${axisY}" class="axisline"/>`,
      breakGlyph(round((mainEnd + ox - 14) / 2), top - 4, axisY,
        `axis break: ${formatDuration(scale.objectiveBeyond - scale.to)} between the run's end and the RTO objective are not drawn`),
      `<text x="${ox}" y="${axisY + 16}" text-anchor="middle" class="axis" data-role="break-label">${esc(formatDuration(scale.objectiveBeyond))}</text>`);
  }
  out.push(`<text x="${right}" y="${axisY + 32}" text-anchor="end" class="axis">time since incident${scale.breaks.length > 0 ? ' (axis broken at ≈)' : ''}</text>`);
  r.steps.forEach((s, i) => {
    const y = top + i * row;
    const by = y + (row - bar) / 2;
    const x0 = x(sinceIncident(r, s.startedAt));
    const w = Math.max(s.status === 'skipped' ? 6 : 2, round(x(sinceIncident(r, s.finishedAt)) - x0));
    const span = `${formatOffset(sinceIncident(r, s.startedAt))} to ${formatOffset(sinceIncident(r, s.finishedAt))}`;
    const label = s.status === 'skipped' ? 'skipped' : preciseDuration(s.durationMs);
    const textX = x0 + w + 6 + 60 < right ? `x="${round(x0 + w + 6)}"` : `x="${round(x0 - 6)}" text-anchor="end"`;
    out.push(`<g class="step" data-step="${esc(s.id)}">`,
      `<text x="8" y="${y + row / 2 + 4}" class="label">${i + 1}. ${esc(clip(s.id, 26))}</text>`,
      `<text x="${left - 12}" y="${y + row / 2 + 4}" text-anchor="end" class="st ${cls(s.status)}">${esc(statusLabel(s.status))}</text>`,
      `<rect class="bar ${cls(s.status)}" x="${x0}" y="${by}" width="${w}" height="${bar}" rx="2" fill="${FILL[cls(s.status)] ?? '#8c959f'}"` +
        `${s.status === 'skipped' ? ' stroke="#6e7781" stroke-dasharray="3 2"' : ''}><title>${esc(`${s.id}: ${statusLabel(s.status)}, ${span} (${label})`)}</title></rect>`,
      `<text ${textX} y="${y + row / 2 + 4}" class="dur">${esc(label)}</text>`);
    for (const c of s.checks) {
      const cx = x(sinceIncident(r, c.finishedAt));
      const color = TICK[cls(c.status)] ?? '#6e7781';
      out.push(`<g class="tick ${cls(c.status)}"><title>${esc(`check ${c.name}: ${statusLabel(c.status)} at ${formatOffset(sinceIncident(r, c.finishedAt))}: ${c.detail}`)}</title>`,
        `<line x1="${cx}" x2="${cx}" y1="${by - 4}" y2="${by + bar + 4}" stroke="#fff" stroke-width="4"/>`,
        `<line x1="${cx}" x2="${cx}" y1="${by - 4}" y2="${by + bar + 4}" stroke="${color}" stroke-width="2"/>`,
        c.status === 'failed' ? `<circle cx="${cx}" cy="${by - 5}" r="4" fill="${color}" stroke="#fff"/>` : '', '</g>');
    }
    out.push('</g>');
  });
  const marker = (role: string, ms: number, y: number, text: string, style: string): void => {
    const mx = x(ms);
    const anchor = mx > left + (right - left) * 0.6 ? `x="${round(mx - 5)}" text-anchor="end"` : `x="${round(mx + 5)}"`;
    out.push(`<line data-role="${role}" x1="${mx}" x2="${mx}" y1="${y - 10}" y2="${axisY}" ${style}/>`,
      `<text ${anchor} y="${y}" class="mark" data-role="${role}-label">${esc(text)}</text>`);
  };
  const objectiveMs = r.rto.objectiveSeconds * 1000;
  const reached = r.rto.achievedSeconds === null ? ': not reached, no verification passed' : '';
  const beyond = scale.objectiveBeyond === null ? '' : ', beyond the axis break';
  marker('rto-objective', objectiveMs, 16, `RTO objective ${formatDuration(objectiveMs)} (${r.rto.tier})${beyond}${reached}`,
    `stroke="${COLOR.objective}" stroke-width="2" stroke-dasharray="6 4"`);
  const v = objectiveRows(r)[0]!.verdict;
  if (r.rto.achievedSeconds !== null) {
    marker('rto-achieved', r.rto.achievedSeconds * 1000, 34, `All checks done ${preciseDuration(r.rto.achievedSeconds * 1000)}: RTO ${v}`,
      `stroke="${r.rto.met === false ? COLOR.missed : COLOR.done}" stroke-width="2"`);
  }
  if (r.rto.service_restored_seconds != null) {
    marker('service-restored', r.rto.service_restored_seconds * 1000, 52, `Service restored ${preciseDuration(r.rto.service_restored_seconds * 1000)}`,
      `stroke="${COLOR.service}" stroke-width="2" stroke-dasharray="2 3"`);
  }
  const ly = axisY + 50;
  const legend: [string, string][] = [
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.ok}"/>`, 'step ok'],
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.failed}"/>`, 'step failed'],
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.skipped}" stroke="#6e7781" stroke-dasharray="3 2"/>`, 'step skipped'],
    [`<line x1="9" x2="9" y1="-12" y2="3" stroke="${TICK.passed}" stroke-width="2"/>`, 'check passed'],
    [`<line x1="9" x2="9" y1="-10" y2="3" stroke="${TICK.failed}" stroke-width="2"/><circle cx="9" cy="-11" r="4" fill="${TICK.failed}"/>`, 'check failed'],
    [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${COLOR.objective}" stroke-width="2" stroke-dasharray="6 4"/>`, 'RTO objective'],
    [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${COLOR.done}" stroke-width="2"/>`, 'all checks done'],
    [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${COLOR.service}" stroke-width="2" stroke-dasharray="2 3"/>`, 'service restored'],
  ];
  legend.forEach(([glyph, text], i) => out.push(`<g transform="translate(${8 + i * 122} ${ly})">${glyph}<text x="24" y="0" class="axis">${text}</text></g>`));
  const rtoRow = objectiveRows(r)[0]!;
  const desc = `${r.steps.length} steps from the incident to ${formatOffset(sinceIncident(r, r.finished_at))}. ` +
    `RTO objective ${rtoRow.target}${beyond}, achieved ${rtoRow.achieved}: ${rtoRow.verdict}. ` +
    (r.rto.service_restored_seconds != null ? `Service restored ${preciseDuration(r.rto.service_restored_seconds * 1000)} after the incident. ` : '') +
    r.steps.map((s, i) => `${i + 1}. ${s.id} ${statusLabel(s.status)}, ${formatDuration(s.durationMs)}`).join('; ');
  return `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="tl-title tl-desc">` +
    `<title id="tl-title">${esc(`Timeline of ${kindTitle(r).toLowerCase()} ${r.id}`)}</title><desc id="tl-desc">${esc(desc)}</desc>\n${out.join('\n')}\n</svg>`;
}
