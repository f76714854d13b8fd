import { formatDuration } from '../duration.js';
import type { CheckResult, ObjectiveResult, RestoreReport, StepResult } from '../restore/types.js';
import { detailMarkdown, detailTree } from './detail-table.js';
import { evidenceRows } from './evidence.js';
import { textTimeline } from './timeline-text.js';

/*
 * The Markdown report, and the wording both renderers share (titles, verdicts, objective rows, detail
 * values), so the Markdown and HTML pages of one run always say the same thing.
 */

export function kindTitle(r: RestoreReport): string {
  return r.kind === 'drill' ? 'DR drill' : 'Restore';
}

/** Status words in capitals, so a verdict never depends on color or emphasis. */
export function statusLabel(status: string): string {
  return status.toUpperCase();
}

export function verdict(met: boolean | null): 'MET' | 'MISSED' | 'NOT MEASURED' {
  return met === true ? 'MET' : met === false ? 'MISSED' : 'NOT MEASURED';
}

/** Milliseconds from the incident to an ISO time (negative if before it; 0 if a time is unreadable). */
export function sinceIncident(r: RestoreReport, iso: string): number {
  const ms = Date.parse(iso) - Date.parse(r.incident_at);
  return Number.isFinite(ms) ? ms : 0;
}

export function formatOffset(ms: number): string {
  return ms < 0 ? `-${formatDuration(-ms)}` : `+${formatDuration(ms)}`;
}

/** "2026-03-14 09:30:12 UTC"; text that is not a time comes back unchanged. */
export function formatTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC` : iso;
}

export interface ObjectiveRow {
  objective: 'RTO' | 'RPO';
  /** "restore" for RTO; the snapshot component for RPO. */
  scope: string;
  tier: string;
  target: string;
  achieved: string;
  verdict: ReturnType<typeof verdict>;
  /** What the achieved figure is measured to. */
  basis: string;
}

function achieved(o: ObjectiveResult, none: string): string {
  return o.achievedSeconds === null ? none : formatDuration(o.achievedSeconds * 1000);
}

/** One RTO row, then one RPO row per component in name order. */
export function objectiveRows(r: RestoreReport): ObjectiveRow[] {
  const rows: ObjectiveRow[] = [
    {
      objective: 'RTO', scope: 'restore', tier: r.rto.tier,
      target: formatDuration(r.rto.objectiveSeconds * 1000),
      achieved: achieved(r.rto, 'not reached'),
      verdict: verdict(r.rto.met),
      basis: r.rto.last_verified_at ? `last verification ${formatTime(r.rto.last_verified_at)}` : 'no verification passed',
    },
  ];
  for (const [component, o] of Object.entries(r.rpo).sort(([a], [b]) => (a < b ? -1 : 1))) {
    rows.push({
      objective: 'RPO', scope: component, tier: o.tier,
      target: formatDuration(o.objectiveSeconds * 1000),
      achieved: achieved(o, 'unknown'),
      verdict: verdict(o.met),
      basis: `consistent at ${formatTime(o.consistent_at)}`,
    });
  }
  return rows;
}

/** "2 of 3 objectives met; missed: RPO redis (21m, target 5m)" */
export function objectiveSummary(r: RestoreReport): string {
  const rows = objectiveRows(r);
  const met = rows.filter((o) => o.verdict === 'MET').length;
  const missed = rows.filter((o) => o.verdict === 'MISSED').map((o) => `${o.objective} ${o.scope} (${o.achieved}, target ${o.target})`);
  const unmeasured = rows.filter((o) => o.verdict === 'NOT MEASURED').length;
  return [`${met} of ${rows.length} objectives met`, missed.length > 0 ? `missed: ${missed.join(', ')}` : '',
    unmeasured > 0 ? `${unmeasured} not measured` : ''].filter(Boolean).join('; ');
}

/** The first failed step and why, or null when no step failed. */
export function firstFailure(r: RestoreReport): { index: number; step: StepResult; reason: string } | null {
  const index = r.steps.findIndex((s) => s.status === 'failed');
  const step = r.steps[index];
  if (!step) return null;
  const check = step.checks.find((c) => c.status === 'failed');
  const reason = step.reason ?? (check ? `${check.name}: ${check.detail}` : 'no reason recorded');
  return { index, step, reason };
}

export function checkSummary(checks: CheckResult[]): string {
  if (checks.length === 0) return 'none';
  const count = (s: string): number => checks.filter((c) => c.status === s).length;
  const parts = [`${count('passed')}/${checks.length} passed`];
  if (count('failed') > 0) parts.push(`${count('failed')} failed`);
  if (count('skipped') > 0) parts.push(`${count('skipped')} skipped`);
  return parts.join(', ');
}

export const DRY_RUN_NOTE =
  'Nothing was restored. The steps show what a real run would do; the timings and objectives are not evidence of recovery.';

/** Markdown text: no HTML, links, emphasis or table breaks from user data; one line. */
export function mdText(s: string): string {
  return s
    .replace(/\r?\n/g, ' ')
    .replace(/[\\`*[\]<>|]/g, '\\$&')
    .replace(/(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, '\\_')
    .replace(/&(?=#?\w+;)/g, '\\&');
}

/** An inline code span that holds any text (backticks included); in a table cell, pipes are escaped too. */
export function mdCode(s: string, inTable = false): string {
  const line = s.replace(/\r?\n/g, ' ');
  const text = inTable ? line.replace(/\|/g, '\\|') : line;
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** HTML escaping, for the <details> summaries in Markdown and for every string in the HTML page. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

function evidenceBlock(check: CheckResult): string[] {
  return [`<details><summary>Evidence: ${escapeHtml(check.name)}</summary>`, '', ...detailMarkdown(detailTree(check.evidence), mdText), '</details>', ''];
}

function stepSection(r: RestoreReport, step: StepResult, n: number): string[] {
  const out = [
    `### ${n}. ${mdCode(step.id)}: ${mdText(statusLabel(step.status))}`,
    '',
    `${mdText(step.component)} · ${mdText(step.action)} · started ${formatOffset(sinceIncident(r, step.startedAt))} · took ${formatDuration(step.durationMs)}`,
    '',
  ];
  if (step.reason) out.push(`**${step.status === 'failed' ? 'Failure' : 'Reason'}:** ${mdText(step.reason)}`, '');
  if (Object.keys(step.details).length > 0) out.push('#### What it did', '', ...detailMarkdown(detailTree(step.details), mdText));
  if (step.checks.length > 0) {
    const rows = step.checks.map((c) => [
      mdText(statusLabel(c.status)), mdCode(c.name, true), mdText(c.detail), formatDuration(c.durationMs),
      formatOffset(sinceIncident(r, c.finishedAt)),
    ]);
    out.push('#### Checks', '', ...table(['Status', 'Check', 'Detail', 'Took', 'Finished'], rows), '');
    for (const c of step.checks) if (c.evidence !== undefined) out.push(...evidenceBlock(c));
  } else {
    out.push('_No checks._', '');
  }
  return out;
}

export function renderMarkdown(r: RestoreReport): string {
  const title = `# ${kindTitle(r)} report: ${mdText(statusLabel(r.status))}${r.dry_run ? ' (DRY RUN)' : ''}`;
  const out = [title, ''];
  const failure = firstFailure(r);
  if (failure) {
    out.push(`> **Failed at step ${failure.index + 1}, ${mdCode(failure.step.id)} (${mdText(failure.step.component)}):** ${mdText(failure.reason)}`, '');
  } else if (r.verdict?.missed.length) {
    out.push(`> **Failed: objective missed:** ${mdText(r.verdict.missed.join('; '))}`, '');
  } else if (r.status === 'failed') {
    out.push('> **Failed:** no step recorded a failure; see the steps below.', '');
  }
  if (r.verdict?.not_proven.length) out.push(`> **NOT PROVEN** (checks skipped, not passed): ${mdText(r.verdict.not_proven.join(', '))}`, '');
  if (r.dry_run) out.push(`> **DRY RUN.** ${DRY_RUN_NOTE}`, '');
  out.push(`**Objectives:** ${mdText(objectiveSummary(r))}.`, '');
  if (r.rto.service_restored_seconds != null) out.push(`**Service restored** (first request served): ${formatDuration(r.rto.service_restored_seconds * 1000)} after the incident.`, '');
  if (r.gateway) out.push(`**Gateway:** ${mdText(r.gateway.summary)}${r.gateway.log ? ` (log: ${mdCode(r.gateway.log)})` : ''}.`, '');
  if (r.warnings.length > 0) {
    out.push(`> **Warnings (${r.warnings.length}):**`, '>');
    out.push(...r.warnings.map((w) => `> - ${mdText(w)}`), '');
  }
  const started = sinceIncident(r, r.started_at);
  const total = Date.parse(r.finished_at) - Date.parse(r.started_at);
  out.push(
    `- **Run:** ${mdCode(r.id)} (${mdText(r.kind)}${r.dry_run ? ', dry run' : ''})`,
    `- **Plan:** ${mdText(r.plan.name)} (${mdCode(r.plan.file)}, version ${mdText(String(r.plan.version))})`,
    `- **Snapshot:** ${mdCode(r.snapshot.id)}, created ${formatTime(r.snapshot.created_at)}, at ${mdCode(r.snapshot.location)}${r.snapshot.picked ? `; ${mdText(r.snapshot.picked)}` : ''}`,
    `- **Incident:** ${formatTime(r.incident_at)}`,
    `- **Started:** ${formatTime(r.started_at)} (${formatOffset(started)} from the incident)`,
    `- **Finished:** ${formatTime(r.finished_at)} (took ${Number.isFinite(total) ? formatDuration(total) : 'unknown'})`,
    `- **Host:** ${mdCode(r.host)} · **tykdr** ${mdText(r.tool_version)}`,
    '',
    '## Objectives',
    '',
    ...table(
      ['Objective', 'Scope', 'Tier', 'Target', 'Achieved', 'Result', 'Measured to'],
      objectiveRows(r).map((o) => [
        o.objective, mdText(o.scope), mdText(o.tier), o.target, o.achieved, `**${o.verdict}**`, mdText(o.basis),
      ]),
    ),
    '',
    '## Steps',
    '',
    ...table(
      ['#', 'Step', 'Component', 'Action', 'Status', 'Duration', 'Started', 'Checks'],
      r.steps.map((s, i) => [
        String(i + 1), mdCode(s.id, true), mdText(s.component), mdText(s.action), mdText(statusLabel(s.status)),
        formatDuration(s.durationMs), formatOffset(sinceIncident(r, s.startedAt)), checkSummary(s.checks),
      ]),
    ),
    '',
    'Started: time from the incident.',
    '',
    '## Timeline',
    '',
    ...textTimeline(r),
    '',
    '## Step details',
    '',
  );
  r.steps.forEach((s, i) => out.push(...stepSection(r, s, i + 1)));
  if (r.evidence) {
    out.push('## Evidence', '', ...table(['Field', 'Value'], evidenceRows(r.evidence).map(([k, v]) => [mdText(k), mdCode(v, true)])), '');
  }
  out.push('---', '', `_${mdText(r.format)} · generated by tykdr ${mdText(r.tool_version)}_`, '');
  return out.join('\n');
}
