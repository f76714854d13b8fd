import { formatDuration } from '../duration.js';
import type { RestoreReport, StepResult } from '../restore/types.js';
import { detailHtml, detailTree } from './detail-table.js';
import { evidenceRows } from './evidence.js';
import { badge, dl, page, st, table, td } from './html-page.js';
import {
  DRY_RUN_NOTE, checkSummary, objectiveSummary, escapeHtml as esc, firstFailure, formatOffset, formatTime, kindTitle,
  objectiveRows, sinceIncident, statusLabel,
} from './render-markdown.js';
import { timelineScale } from './timeline-scale.js';
import { timelineSvg } from './timeline-svg.js';

/*
 * One self-contained HTML page: inline CSS and SVG, no scripts, no external assets, printable, readable
 * on a phone. Every string that comes from the report goes through esc(); CSS classes come only from cls().
 */

function stepArticle(r: RestoreReport, s: StepResult, n: number): string {
  const parts = [`<article class="${s.status === 'ok' ? 'ok' : s.status === 'failed' ? 'failed' : 'skipped'}" id="step-${n}" aria-labelledby="step-${n}-h">`,
    `<h3 id="step-${n}-h">${n}. <code>${esc(s.id)}</code> ${st(s.status)}</h3>`,
    `<p class="sub">${esc(s.component)} · ${esc(s.action)} · started ${formatOffset(sinceIncident(r, s.startedAt))} · took ${formatDuration(s.durationMs)}</p>`];
  if (s.reason) parts.push(`<p><strong>${s.status === 'failed' ? 'Failure' : 'Reason'}:</strong> ${esc(s.reason)}</p>`);
  if (Object.keys(s.details).length > 0) parts.push(`<h4>What it did</h4><div class="scroll details">${detailHtml(detailTree(s.details))}</div>`);
  if (s.checks.length === 0) parts.push('<p class="sub">No checks.</p>');
  else {
    parts.push('<h4>Checks</h4>', table(['Status', 'Check', 'Detail', 'Took', 'Finished'], s.checks.map((c) => [
      td(st(c.status)), td(`<code>${esc(c.name)}</code>`), td(esc(c.detail)), td(formatDuration(c.durationMs), 'n'),
      td(formatOffset(sinceIncident(r, c.finishedAt)), 'n'),
    ])));
    for (const c of s.checks) {
      if (c.evidence === undefined) continue;
      parts.push(`<details class="evidence"><summary>Evidence: <code>${esc(c.name)}</code></summary><div class="scroll">${detailHtml(detailTree(c.evidence))}</div></details>`);
    }
  }
  return `${parts.join('\n')}\n</article>`;
}

/** The timeline's numbers as a table: its text alternative, also what a printed page shows exactly. */
function timelineTable(r: RestoreReport): string {
  const rows = r.steps.map((s, i) => [td(String(i + 1), 'n'), td(`<code>${esc(s.id)}</code>`), td(st(s.status)),
    td(formatOffset(sinceIncident(r, s.startedAt)), 'n'), td(formatOffset(sinceIncident(r, s.finishedAt)), 'n'), td(formatDuration(s.durationMs), 'n')]);
  return `<details class="timeline-data"><summary>Timeline as a table</summary>${table(['#', 'Step', 'Status', 'Start', 'End', 'Took'], rows)}</details>`;
}

function moments(r: RestoreReport): string {
  const rto = objectiveRows(r)[0]!;
  const scale = timelineScale(r);
  const items = [
    `<li><strong>RTO objective:</strong> ${esc(rto.target)} (${esc(r.rto.tier)})${scale.objectiveBeyond === null ? '' : ', far beyond the run: drawn past the axis break'}</li>`,
    `<li><strong>Service restored</strong> (first request served): ${r.rto.service_restored_seconds == null ? 'not measured (no gateway request was proven)' : esc(formatOffset(r.rto.service_restored_seconds * 1000))}</li>`,
    `<li><strong>All checks done:</strong> ${r.rto.achievedSeconds === null ? 'not reached' : esc(formatOffset(r.rto.achievedSeconds * 1000))}: RTO ${badge(rto.verdict === 'NOT MEASURED' ? 'unknown' : rto.verdict, rto.verdict)}</li>`,
  ];
  return `<ul class="moments">${items.join('')}</ul>`;
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
  body.push('<main>');
  body.push('<section aria-labelledby="h-objectives"><h2 id="h-objectives">Objectives</h2>', table(['Objective', 'Scope', 'Tier', 'Target', 'Achieved', 'Result', 'Measured to'],
    objectiveRows(r).map((o) => [td(o.objective), td(esc(o.scope)), td(esc(o.tier)), td(o.target, 'n'), td(esc(o.achieved), 'n'),
      td(badge(o.verdict === 'NOT MEASURED' ? 'unknown' : o.verdict, o.verdict)), td(esc(o.basis))])), '</section>');
  body.push('<section aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2>', moments(r),
    `<figure><div class="scroll">${timelineSvg(r)}</div>`,
    '<figcaption>Time since the incident, to the scale of the run; ≈ marks where the axis skips time.</figcaption></figure>', timelineTable(r), '</section>');
  body.push('<section aria-labelledby="h-steps"><h2 id="h-steps">Steps</h2>', table(['#', 'Step', 'Component', 'Action', 'Status', 'Duration', 'Started', 'Checks'],
    r.steps.map((s, i) => [td(String(i + 1), 'n'), td(`<a href="#step-${i + 1}"><code>${esc(s.id)}</code></a>`), td(esc(s.component)),
      td(esc(s.action)), td(st(s.status)), td(formatDuration(s.durationMs), 'n'), td(formatOffset(sinceIncident(r, s.startedAt)), 'n'),
      td(esc(checkSummary(s.checks)))])), '<p class="sub">Started: time from the incident.</p></section>');
  body.push('<section aria-labelledby="h-details"><h2 id="h-details">Step details</h2>', ...r.steps.map((s, i) => stepArticle(r, s, i + 1)), '</section>');
  if (r.evidence) {
    body.push('<section id="evidence"><h2>Evidence</h2>',
      table(['Field', 'Value'], evidenceRows(r.evidence).map(([k, v]) => [`<th scope="row">${esc(k)}</th>`, td(`<code>${esc(v)}</code>`)])), '</section>');
  }
  body.push('</main>');
  body.push(`<footer>${esc(r.format)} · report <code>${esc(r.id)}</code> · generated by tykdr ${esc(r.tool_version)}</footer>`);
  return page(`${title} · ${r.id}`, body);
}
