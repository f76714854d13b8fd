import { formatDuration } from '../duration.js';
import { escapeHtml as esc, formatTime } from '../report/render-markdown.js';
import type { DrillRecord } from './history.js';

/*
 * The drill history chart: the measured RTO of every drill over time, one series per plan, and each
 * plan's RTO objective as a dashed line in the plan's color. RTOs and objectives often differ by orders
 * of magnitude (a 2 s drill against 15 min), so the y axis is logarithmic when the values span more than
 * 20x, and says so. A drill without a measured RTO (it failed first) is a cross on the bottom band.
 */

export const CHART = { width: 1000, height: 380, left: 74, right: 800, top: 24, bottom: 300 } as const;

/** Plan colors: distinguishable without red and green, which mean failed and passed. */
export const PLAN_COLORS = ['#0969da', '#8250df', '#9a6700', '#1b7c83', '#bc4c00', '#6e7781'];
const RED = '#cf222e';

const round = (n: number): number => Math.round(n * 100) / 100;

export interface ChartScale {
  log: boolean;
  y(seconds: number): number;
  x(ms: number): number;
  yTicks: number[];
  xTicks: number[];
}

const Y_NICE = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];

export function chartScale(records: DrillRecord[]): ChartScale {
  const values = records.flatMap((d) => [d.rtoSeconds, d.rtoObjectiveSeconds]).filter((v): v is number => v !== null && v > 0);
  const lo = Math.min(...values, 1);
  const hi = Math.max(...values, 1);
  const log = hi / lo > 20;
  const { bottom, top, left, right } = CHART;
  const plotBottom = bottom - 26; // the band under it holds drills without an RTO
  let y: (s: number) => number;
  let yTicks: number[];
  if (log) {
    const a = Math.log10(Y_NICE.filter((n) => n <= lo).pop() ?? lo);
    const b = Math.log10(Y_NICE.find((n) => n >= hi) ?? hi);
    y = (s) => round(plotBottom - ((Math.log10(Math.max(s, 10 ** a)) - a) / Math.max(b - a, 1e-9)) * (plotBottom - top));
    const inRange = (n: number): boolean => Math.log10(n) >= a - 1e-9 && Math.log10(n) <= b + 1e-9;
    // Decades (and minutes, hours) keep the labels apart on a log axis.
    yTicks = [0.01, 0.1, 1, 10, 60, 600, 3600, 36000, 86400].filter(inRange);
    if (yTicks.length < 3) yTicks = Y_NICE.filter(inRange);
  } else {
    const step = Y_NICE.find((n) => (hi * 1.1) / n <= 6) ?? 86400;
    const max = Math.ceil((hi * 1.1) / step) * step;
    y = (s) => round(plotBottom - (s / max) * (plotBottom - top));
    yTicks = [];
    for (let t = 0; t <= max + 1e-9; t += step) yTicks.push(t);
  }
  const times = records.map((d) => Date.parse(d.finishedAt)).filter(Number.isFinite);
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (!(t1 > t0)) {
    t0 -= 3600_000;
    t1 += 3600_000;
  }
  const pad = (t1 - t0) * 0.04;
  t0 -= pad;
  t1 += pad;
  const x = (ms: number): number => round(left + ((ms - t0) / (t1 - t0)) * (right - left));
  const xTicks: number[] = [];
  for (let i = 0; i <= 5; i++) xTicks.push(t0 + ((t1 - t0) * i) / 5);
  return { log, y, x, yTicks, xTicks };
}

const secondsLabel = (s: number): string => (s < 1 ? `${Math.round(s * 1000)}ms` : formatDuration(s * 1000));

function timeLabel(ms: number, span: number): string {
  const iso = new Date(ms).toISOString();
  if (span > 3 * 86400_000) return iso.slice(0, 10);
  return span > 3600_000 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 19);
}

function point(d: DrillRecord, cx: number, cy: number, color: string): string {
  const title = `<title>${esc(`${d.plan}, ${formatTime(d.finishedAt)}: ${d.verdict}, RTO ${d.rtoSeconds === null ? 'not measured' : secondsLabel(d.rtoSeconds)} (objective ${secondsLabel(d.rtoObjectiveSeconds)})`)}</title>`;
  const attrs = `class="point" data-verdict="${esc(d.verdict)}" data-drill="${esc(d.id)}"`;
  switch (d.verdict) {
    case 'PASSED':
      return `<circle ${attrs} cx="${cx}" cy="${cy}" r="5" fill="${color}" stroke="#fff" stroke-width="1.5">${title}</circle>`;
    case 'NOT PROVEN':
      return `<circle ${attrs} cx="${cx}" cy="${cy}" r="5" fill="#fff" stroke="${color}" stroke-width="2">${title}</circle>`;
    case 'MISSED':
      return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="7" fill="#fff" stroke="${RED}" stroke-width="2"/><circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/></g>`;
    case 'FAILED':
      return `<g ${attrs}>${title}<path d="M${cx - 5} ${cy - 5} L${cx + 5} ${cy + 5} M${cx - 5} ${cy + 5} L${cx + 5} ${cy - 5}" stroke="${RED}" stroke-width="2.5"/></g>`;
  }
}

/** The SVG; records newest first. `describedBy` names the table that holds the same numbers. */
export function historyChartSvg(records: DrillRecord[], describedBy: string): string {
  const { width, height, left, right, top, bottom } = CHART;
  const scale = chartScale(records);
  const plans = [...new Set(records.map((d) => d.plan))].sort();
  const out: string[] = [];
  const labels: Array<{ y: number; text: string; color: string }> = [];
  for (const t of scale.yTicks) {
    const y = scale.y(t);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" class="grid"/>`, `<text x="${left - 8}" y="${y + 4}" text-anchor="end" class="axis">${secondsLabel(t)}</text>`);
  }
  out.push(`<text x="${left - 8}" y="${bottom - 4}" text-anchor="end" class="axis">no RTO</text>`,
    `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" class="axisline"/>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" class="axisline"/>`);
  const times = records.map((d) => Date.parse(d.finishedAt));
  const span = Math.max(...times) - Math.min(...times);
  for (const t of scale.xTicks) {
    out.push(`<text x="${scale.x(t)}" y="${bottom + 18}" text-anchor="middle" class="axis">${esc(timeLabel(t, span))}</text>`);
  }
  out.push(`<text x="${round((left + right) / 2)}" y="${bottom + 38}" text-anchor="middle" class="axis">drill finished (UTC)</text>`,
    `<text x="16" y="${round((top + bottom) / 2)}" text-anchor="middle" class="axis" transform="rotate(-90 16 ${round((top + bottom) / 2)})">RTO${scale.log ? ' (log scale)' : ''}</text>`);
  plans.forEach((plan, i) => {
    const color = PLAN_COLORS[i % PLAN_COLORS.length]!;
    const mine = records.filter((d) => d.plan === plan).slice().reverse();
    // The objective as a step line across the plan's drills (it changes when the tiers do).
    const obj: string[] = [];
    mine.forEach((d, k) => {
      const y = scale.y(d.rtoObjectiveSeconds);
      const xa = k === 0 ? left : scale.x(Date.parse(d.finishedAt));
      const xb = k === mine.length - 1 ? right : scale.x(Date.parse(mine[k + 1]!.finishedAt));
      obj.push(`${k === 0 ? 'M' : 'L'}${xa} ${y} L${xb} ${y}`);
    });
    const last = mine[mine.length - 1]!;
    out.push(`<g class="objective" data-plan="${esc(plan)}"><title>${esc(`${plan}: RTO objective ${secondsLabel(last.rtoObjectiveSeconds)} (${last.rtoTier})`)}</title>` +
      `<path d="${obj.join(' ')}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="7 4"/></g>`);
    labels.push({ y: scale.y(last.rtoObjectiveSeconds) + 4, text: `${plan} objective ${secondsLabel(last.rtoObjectiveSeconds)}`, color });
    const pts = mine.filter((d) => d.rtoSeconds !== null).map((d) => `${scale.x(Date.parse(d.finishedAt))},${scale.y(d.rtoSeconds!)}`);
    out.push(`<g class="series" data-plan="${esc(plan)}">`,
      pts.length > 1 ? `<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>` : '',
      ...mine.map((d) => point(d, scale.x(Date.parse(d.finishedAt)), d.rtoSeconds === null ? bottom - 9 : scale.y(d.rtoSeconds), color)), '</g>');
  });
  // Objective labels right of the plot, nudged apart when plans share an objective.
  labels.sort((a, b) => a.y - b.y);
  labels.forEach((l, i) => {
    if (i > 0) l.y = Math.max(l.y, labels[i - 1]!.y + 15);
    out.push(`<text x="${right + 6}" y="${round(l.y)}" class="axis objective-label" style="fill:${l.color}">${esc(l.text)}</text>`);
  });
  const ly = height - 22;
  const legend: [string, string][] = [
    ...plans.map((p, i): [string, string] => [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${PLAN_COLORS[i % PLAN_COLORS.length]}" stroke-width="2"/>`, `plan ${esc(p)}`]),
    ['<line x1="0" x2="18" y1="-4" y2="-4" stroke="#57606a" stroke-width="1.5" stroke-dasharray="7 4"/>', 'RTO objective'],
    ['<circle cx="9" cy="-4" r="5" fill="#57606a"/>', 'passed'],
    ['<circle cx="9" cy="-4" r="5" fill="#fff" stroke="#57606a" stroke-width="2"/>', 'not proven'],
    [`<circle cx="9" cy="-4" r="6" fill="#fff" stroke="${RED}" stroke-width="2"/><circle cx="9" cy="-4" r="3" fill="#57606a"/>`, 'missed'],
    [`<path d="M4 -9 L14 1 M4 1 L14 -9" stroke="${RED}" stroke-width="2.5"/>`, 'failed'],
  ];
  let lx = 8;
  for (const [glyph, text] of legend) {
    out.push(`<g transform="translate(${lx} ${ly})">${glyph}<text x="24" y="0" class="axis">${text}</text></g>`);
    lx += 40 + text.length * 7;
  }
  const desc = `Measured RTO of ${records.length} drills over time, one series per plan (${plans.join(', ')}), with each plan's RTO objective as a dashed line` +
    `${scale.log ? '; logarithmic time axis' : ''}. The table of recent drills holds the same numbers.`;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-labelledby="chart-title chart-desc" aria-describedby="${esc(describedBy)}"><title id="chart-title">RTO per plan over time</title><desc id="chart-desc">${esc(desc)}</desc>\n` +
    `${out.join('\n')}\n</svg>`;
}
