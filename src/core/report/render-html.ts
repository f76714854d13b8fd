import { formatDuration } from '../duration.js';
import type { RestoreReport, StepResult } from '../restore/types.js';
import { evidenceRows } from './evidence.js';
import { compactJson } from './render-json.js';
import {
  DRY_RUN_NOTE, checkSummary, objectiveSummary, escapeHtml as esc, firstFailure, formatDetail, formatOffset, formatTime, kindTitle,
  objectiveRows, sinceIncident, statusLabel,
} from './render-markdown.js';

/*
 * One self-contained HTML page: inline CSS and SVG, no scripts, no external assets, printable.
 * Every string that comes from the report goes through esc(); CSS classes come only from cls().
 */

/** Timeline geometry in SVG user units; exported so tests can compute where a line must be. */
export const TIMELINE = { width: 1000, left: 240, right: 970, top: 50, row: 30, bar: 14 } as const;

const STATUS_CLASSES = new Set(['ok', 'failed', 'skipped', 'passed', 'succeeded', 'met', 'missed', 'dry']);
const cls = (status: string): string => (STATUS_CLASSES.has(status.toLowerCase()) ? status.toLowerCase() : 'unknown');

const FILL: Record<string, string> = { ok: '#2da44e', failed: '#cf222e', skipped: '#eaeef2' };
const TICK: Record<string, string> = { passed: '#0a3d1a', failed: '#a40e26', skipped: '#6e7781' };
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const NICE_STEPS = [1, 2, 5, 10, 15, 30].map((n) => n * SEC)
  .concat([1, 2, 5, 10, 15, 30].map((n) => n * MIN), [1, 2, 3, 6, 12, 24, 48].map((n) => n * HOUR));

/** The x axis runs from the incident (0) to the latest of: run end, step and check ends, RTO objective, achieved RTO. */
export function timelineDomainMs(r: RestoreReport): number {
  const ends = [sinceIncident(r, r.finished_at), r.rto.objectiveSeconds * SEC, (r.rto.achievedSeconds ?? 0) * SEC];
  for (const s of r.steps) ends.push(sinceIncident(r, s.finishedAt), ...s.checks.map((c) => sinceIncident(r, c.finishedAt)));
  return Math.max(SEC, ...ends.filter(Number.isFinite));
}

const round = (n: number): number => Math.round(n * 100) / 100;
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function timeline(r: RestoreReport): string {
  const { width, left, right, top, row, bar } = TIMELINE;
  const domain = timelineDomainMs(r);
  const x = (ms: number): number => round(left + (Math.min(Math.max(ms, 0), domain) / domain) * (right - left));
  const axisY = top + r.steps.length * row + 4;
  const height = axisY + 58;
  const out: string[] = [];
  const start = x(Math.max(0, sinceIncident(r, r.started_at)));
  if (start - left >= 4) {
    out.push(`<rect class="wait" x="${left}" y="${top - 4}" width="${round(start - left)}" height="${axisY - top + 4}" fill="#eef1f4">` +
      `<title>incident to restore start: ${formatDuration(sinceIncident(r, r.started_at))}</title></rect>`);
    if (start - left >= 90) out.push(`<text x="${round((left + start) / 2)}" y="${axisY - 6}" text-anchor="middle" class="axis">before restore start</text>`);
  }
  const interval = NICE_STEPS.find((n) => domain / n <= 8) ?? NICE_STEPS[NICE_STEPS.length - 1]!;
  for (let t = 0; t <= domain; t += interval) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${axisY}" class="grid"/>`,
      `<text x="${x(t)}" y="${axisY + 16}" text-anchor="middle" class="axis">${t === 0 ? 'incident' : formatDuration(t)}</text>`);
  }
  out.push(`<line x1="${left}" x2="${right}" y1="${axisY}" y2="${axisY}" class="axisline"/>`,
    `<text x="${right}" y="${axisY + 32}" text-anchor="end" class="axis">time since incident</text>`);
  r.steps.forEach((s, i) => {
    const y = top + i * row;
    const by = y + (row - bar) / 2;
    const x0 = x(sinceIncident(r, s.startedAt));
    const w = Math.max(s.status === 'skipped' ? 6 : 2, round(x(sinceIncident(r, s.finishedAt)) - x0));
    const span = `${formatOffset(sinceIncident(r, s.startedAt))} to ${formatOffset(sinceIncident(r, s.finishedAt))}`;
    const label = s.status === 'skipped' ? 'skipped' : formatDuration(s.durationMs);
    const textX = x0 + w + 6 + 60 < right ? `x="${round(x0 + w + 6)}"` : `x="${round(x0 - 6)}" text-anchor="end"`;
    out.push(`<g class="step" data-step="${esc(s.id)}">`,
      `<text x="8" y="${y + row / 2 + 4}" class="label">${i + 1}. ${esc(clip(s.id, 26))}</text>`,
      `<text x="${left - 12}" y="${y + row / 2 + 4}" text-anchor="end" class="st ${cls(s.status)}">${esc(statusLabel(s.status))}</text>`,
      `<rect class="bar ${cls(s.status)}" x="${x0}" y="${by}" width="${w}" height="${bar}" rx="2" fill="${FILL[cls(s.status)] ?? '#8c959f'}"` +
        `${s.status === 'skipped' ? ' stroke="#6e7781" stroke-dasharray="3 2"' : ''}><title>${esc(`${s.id}: ${statusLabel(s.status)}, ${span} (${label})`)}</title></rect>`,
      `<text ${textX} y="${y + row / 2 + 4}" class="dur">${label}</text>`);
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
      `<text ${anchor} y="${y}" class="mark">${esc(text)}</text>`);
  };
  const reached = r.rto.achievedSeconds === null ? ': not reached, no verification passed' : '';
  marker('rto-objective', r.rto.objectiveSeconds * SEC, 16, `RTO objective ${formatDuration(r.rto.objectiveSeconds * SEC)} (${r.rto.tier})${reached}`,
    'stroke="#57606a" stroke-width="2" stroke-dasharray="6 4"');
  if (r.rto.achievedSeconds !== null) {
    const v = objectiveRows(r)[0]!.verdict;
    marker('rto-achieved', r.rto.achievedSeconds * SEC, 36, `RTO achieved ${formatDuration(r.rto.achievedSeconds * SEC)}: ${v}`,
      `stroke="${r.rto.met === false ? '#cf222e' : '#1a7f37'}" stroke-width="2"`);
  }
  const ly = axisY + 48;
  const legend: [string, string][] = [
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.ok}"/>`, 'step ok'],
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.failed}"/>`, 'step failed'],
    [`<rect x="0" y="-9" width="18" height="10" rx="2" fill="${FILL.skipped}" stroke="#6e7781" stroke-dasharray="3 2"/>`, 'step skipped'],
    [`<line x1="9" x2="9" y1="-12" y2="3" stroke="${TICK.passed}" stroke-width="2"/>`, 'check passed'],
    [`<line x1="9" x2="9" y1="-10" y2="3" stroke="${TICK.failed}" stroke-width="2"/><circle cx="9" cy="-11" r="4" fill="${TICK.failed}"/>`, 'check failed'],
    ['<line x1="0" x2="18" y1="-4" y2="-4" stroke="#57606a" stroke-width="2" stroke-dasharray="6 4"/>', 'RTO objective'],
    ['<line x1="0" x2="18" y1="-4" y2="-4" stroke="#1a7f37" stroke-width="2"/>', 'RTO achieved'],
  ];
  legend.forEach(([glyph, text], i) => out.push(`<g transform="translate(${8 + i * 128} ${ly})">${glyph}<text x="24" y="0" class="axis">${text}</text></g>`));
  const rtoRow = objectiveRows(r)[0]!;
  const desc = `${r.steps.length} steps from the incident to ${formatOffset(sinceIncident(r, r.finished_at))}. ` +
    `RTO objective ${rtoRow.target}, achieved ${rtoRow.achieved}: ${rtoRow.verdict}. ` +
    r.steps.map((s, i) => `${i + 1}. ${s.id} ${statusLabel(s.status)}, ${formatDuration(s.durationMs)}`).join('; ');
  return `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="tl-title tl-desc">` +
    `<title id="tl-title">${esc(`Timeline of ${kindTitle(r).toLowerCase()} ${r.id}`)}</title><desc id="tl-desc">${esc(desc)}</desc>\n${out.join('\n')}\n</svg>`;
}

const CSS = `
:root{--ok:#1a7f37;--fail:#cf222e;--skip:#57606a;--warn:#9a6700;--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);max-width:1100px;margin:24px auto;padding:0 24px}
h1{font-size:26px;margin:2px 0 12px}h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:4px;margin:28px 0 10px}
h3{font-size:15px;margin:0 0 4px}code,pre{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.summary{font-size:15px;margin:6px 0}.summary.missed strong{color:var(--fail)}
.eyebrow{color:var(--muted);text-transform:uppercase;letter-spacing:.06em;font-size:12px;margin:0}
.badge{display:inline-block;padding:1px 10px;border-radius:12px;font-size:14px;font-weight:700;color:#fff;vertical-align:middle;background:var(--skip)}
.badge.succeeded,.badge.ok,.badge.passed,.badge.met{background:var(--ok)}.badge.failed,.badge.missed{background:var(--fail)}.badge.dry{background:#0969da}
.banner{border-left:5px solid;padding:8px 14px;margin:10px 0;border-radius:4px}.banner p,.banner ul{margin:2px 0}
.banner.failed{border-color:var(--fail);background:#ffebe9}.banner.warn{border-color:var(--warn);background:#fff8c5}.banner.dry{border-color:#0969da;background:#ddf4ff}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
td code{white-space:nowrap}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}td.n{text-align:right;white-space:nowrap}
.st{font-weight:700}.st.ok,.st.passed,.st.met,.st.succeeded{color:var(--ok);fill:var(--ok)}.st.failed,.st.missed{color:var(--fail);fill:var(--fail)}.st.skipped,.st.unknown{color:var(--skip);fill:var(--skip)}
article{border:1px solid var(--line);border-left:5px solid var(--skip);border-radius:6px;padding:10px 16px;margin:12px 0;break-inside:avoid}
article.ok{border-left-color:var(--ok)}article.failed{border-left-color:var(--fail)}.sub{color:var(--muted);margin:0 0 6px}
details summary{cursor:pointer;color:#0969da}details pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--soft);padding:6px 8px;border-radius:4px;margin:4px 0}
svg.timeline{width:100%;height:auto;font:13px -apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .grid{stroke:#eaeef2}svg .axisline{stroke:#8c959f}svg .axis,svg .dur{fill:var(--muted)}svg .label{fill:var(--ink)}svg .mark{fill:var(--ink);font-weight:600}
footer{margin-top:28px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:6px}
@media print{body{margin:0;max-width:none;padding:0;font-size:11px}h2{break-after:avoid}tr,article,svg{break-inside:avoid}
details::details-content{content-visibility:visible;display:contents}details summary{color:var(--muted)}
*{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
`;

const badge = (status: string, text = statusLabel(status)): string => `<span class="badge ${cls(status)}">${esc(text)}</span>`;
const st = (status: string, text = statusLabel(status)): string => `<span class="st ${cls(status)}">${esc(text)}</span>`;
const td = (s: string, cl = ''): string => `<td${cl ? ` class="${cl}"` : ''}>${s}</td>`;
const table = (head: string[], rows: string[][]): string =>
  `<table><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead><tbody>\n` +
  `${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}\n</tbody></table>`;
const dl = (pairs: [string, string][]): string => `<dl>${pairs.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;

function stepArticle(r: RestoreReport, s: StepResult, n: number): string {
  const parts = [`<article class="${cls(s.status)}" id="step-${n}">`,
    `<h3>${n}. <code>${esc(s.id)}</code> ${st(s.status)}</h3>`,
    `<p class="sub">${esc(s.component)} · ${esc(s.action)} · started ${formatOffset(sinceIncident(r, s.startedAt))} · took ${formatDuration(s.durationMs)}</p>`];
  if (s.reason) parts.push(`<p><strong>${s.status === 'failed' ? 'Failure' : 'Reason'}:</strong> ${esc(s.reason)}</p>`);
  const keys = Object.keys(s.details).sort();
  if (keys.length > 0) parts.push(dl(keys.map((k) => [esc(k), esc(formatDetail(k, s.details[k]))])));
  if (s.checks.length === 0) parts.push('<p class="sub">No checks.</p>');
  else {
    parts.push(table(['Status', 'Check', 'Detail', 'Took', 'Finished', 'Evidence'], s.checks.map((c) => [
      td(st(c.status)), td(`<code>${esc(c.name)}</code>`), td(esc(c.detail)), td(formatDuration(c.durationMs), 'n'),
      td(formatOffset(sinceIncident(r, c.finishedAt)), 'n'),
      td(c.evidence === undefined ? '—' : `<details><summary>evidence</summary><pre>${esc(compactJson(c.evidence))}</pre></details>`),
    ])));
  }
  return `${parts.join('\n')}\n</article>`;
}

export function renderHtml(r: RestoreReport): string {
  const title = `${kindTitle(r)} report: ${statusLabel(r.status)}${r.dry_run ? ' (DRY RUN)' : ''}`;
  const body: string[] = [`<header><p class="eyebrow">tykdr · ${esc(kindTitle(r))} report</p>`,
    `<h1>${esc(kindTitle(r))}: ${badge(r.status)}${r.dry_run ? ` ${badge('dry', 'DRY RUN')}` : ''}</h1>`];
  const failure = firstFailure(r);
  if (failure) {
    body.push(`<div class="banner failed" role="alert"><p><strong>Failed at step ${failure.index + 1}, <code>${esc(failure.step.id)}</code> (${esc(failure.step.component)}):</strong> ${esc(failure.reason)}</p></div>`);
  } else if (r.verdict?.missed.length) {
    body.push(`<div class="banner failed" role="alert"><p><strong>Failed: objective missed:</strong> ${esc(r.verdict.missed.join('; '))}</p></div>`);
  } else if (r.status === 'failed') {
    body.push('<div class="banner failed" role="alert"><p><strong>Failed:</strong> no step recorded a failure; see the steps below.</p></div>');
  }
  if (r.verdict?.not_proven.length) {
    body.push(`<div class="banner warn" role="note"><p><strong>NOT PROVEN</strong> (checks skipped, not passed): ${esc(r.verdict.not_proven.join(', '))}</p></div>`);
  }
  if (r.dry_run) body.push(`<div class="banner dry"><p><strong>DRY RUN.</strong> ${esc(DRY_RUN_NOTE)}</p></div>`);
  const anyMissed = objectiveRows(r).some((o) => o.verdict === 'MISSED');
  body.push(`<p class="summary${anyMissed ? ' missed' : ''}"><strong>Objectives:</strong> ${esc(objectiveSummary(r))}.</p>`);
  if (r.rto.service_restored_seconds != null) {
    body.push(`<p class="summary"><strong>Service restored</strong> (first request served): ${esc(formatDuration(r.rto.service_restored_seconds * 1000))} after the incident.</p>`);
  }
  if (r.gateway) {
    body.push(`<p class="summary${r.gateway.proven ? '' : ' missed'}"><strong>Gateway:</strong> ${esc(r.gateway.summary)}${r.gateway.log ? ` (log: <code>${esc(r.gateway.log)}</code>)` : ''}.</p>`);
  }
  if (r.warnings.length > 0) {
    body.push(`<div class="banner warn" role="note"><p><strong>Warnings (${r.warnings.length})</strong></p><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`);
  }
  const total = Date.parse(r.finished_at) - Date.parse(r.started_at);
  body.push(dl([
    ['Run', `<code>${esc(r.id)}</code> (${esc(r.kind)}${r.dry_run ? ', dry run' : ''})`],
    ['Plan', `${esc(r.plan.name)} (<code>${esc(r.plan.file)}</code>, version ${esc(String(r.plan.version))})`],
    ['Snapshot', `<code>${esc(r.snapshot.id)}</code>, created ${esc(formatTime(r.snapshot.created_at))}, at <code>${esc(r.snapshot.location)}</code>${r.snapshot.picked ? `; ${esc(r.snapshot.picked)}` : ''}`],
    ['Incident', esc(formatTime(r.incident_at))],
    ['Started', `${esc(formatTime(r.started_at))} (${formatOffset(sinceIncident(r, r.started_at))} from the incident)`],
    ['Finished', `${esc(formatTime(r.finished_at))} (took ${Number.isFinite(total) ? formatDuration(total) : 'unknown'})`],
    ['Host', `<code>${esc(r.host)}</code> · tykdr ${esc(r.tool_version)}`],
  ]), '</header>');
  body.push('<section><h2>Objectives</h2>', table(['Objective', 'Scope', 'Tier', 'Target', 'Achieved', 'Result', 'Measured to'],
    objectiveRows(r).map((o) => [td(o.objective), td(esc(o.scope)), td(esc(o.tier)), td(o.target, 'n'), td(esc(o.achieved), 'n'),
      td(badge(o.verdict === 'NOT MEASURED' ? 'unknown' : o.verdict, o.verdict)), td(esc(o.basis))])), '</section>');
  body.push('<section><h2>Timeline</h2>', timeline(r), '</section>');
  body.push('<section><h2>Steps</h2>', table(['#', 'Step', 'Component', 'Action', 'Status', 'Duration', 'Started', 'Checks'],
    r.steps.map((s, i) => [td(String(i + 1), 'n'), td(`<a href="#step-${i + 1}"><code>${esc(s.id)}</code></a>`), td(esc(s.component)),
      td(esc(s.action)), td(st(s.status)), td(formatDuration(s.durationMs), 'n'), td(formatOffset(sinceIncident(r, s.startedAt)), 'n'),
      td(esc(checkSummary(s.checks)))])), '<p class="sub">Started: time from the incident.</p></section>');
  body.push('<section><h2>Step details</h2>', ...r.steps.map((s, i) => stepArticle(r, s, i + 1)), '</section>');
  if (r.evidence) {
    body.push('<section id="evidence"><h2>Evidence</h2>',
      table(['Field', 'Value'], evidenceRows(r.evidence).map(([k, v]) => [`<th scope="row">${esc(k)}</th>`, td(`<code>${esc(v)}</code>`)])), '</section>');
  }
  body.push(`<footer>${esc(r.format)} · report <code>${esc(r.id)}</code> · generated by tykdr ${esc(r.tool_version)}</footer>`);
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${esc(`${title} · ${r.id}`)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${body.join('\n')}\n</body>\n</html>\n`;
}
