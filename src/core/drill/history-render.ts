import { formatDuration } from '../duration.js';
import { badge, page, st, table, td } from '../report/html-page.js';
import { escapeHtml as esc, formatTime, mdCode, mdText } from '../report/render-markdown.js';
import { historyChartSvg } from './history-chart.js';
import { componentSummaries, percent, planSummaries } from './history-summary.js';
import type { DrillRecord, DrillVerdict } from './history.js';

/*
 * The drill history report (tykdr drills --html / --markdown): pass rate per plan, when each component
 * was last proven, the RTO per plan over time against the objectives, and every drill with its verdict
 * and a link to its own report. Self-contained like the run reports (see report/html-page.ts).
 */

export interface HistoryPage {
  /** Drill records, newest first (listDrills). */
  drills: DrillRecord[];
  /** Where the drills were read from (the store's location). */
  location: string;
  /** Link to each drill's HTML report, by drill id, relative to the page where possible. */
  links: Map<string, string>;
  generatedAt: Date;
  plan?: string;
  toolVersion: string;
}

const VERDICT_CLASS: Record<DrillVerdict, string> = { PASSED: 'passed', FAILED: 'failed', MISSED: 'missed', 'NOT PROVEN': 'notproven' };
const secs = (s: number | null): string => (s === null ? 'not measured' : s < 1 ? `${Math.round(s * 1000)}ms` : formatDuration(s * 1000));
const short = (iso: string): string => formatTime(iso);

function why(d: DrillRecord): string {
  if (d.verdict === 'MISSED') return `missed: ${d.missed.join('; ')}`;
  if (d.verdict === 'FAILED') {
    const failed = d.steps.filter((s) => s.status === 'failed').map((s) => s.id);
    return failed.length > 0 ? `failed step: ${failed.join(', ')}` : 'failed before any step (see its report)';
  }
  if (d.verdict === 'NOT PROVEN') return `not proven: ${d.notProven.length} check(s) skipped`;
  return 'every check passed';
}

function headline(drills: DrillRecord[]): string {
  const by = (v: DrillVerdict): number => drills.filter((d) => d.verdict === v).length;
  const succeeded = drills.filter((d) => d.status === 'succeeded').length;
  return `${drills.length} drill(s): ${succeeded} succeeded (${percent(succeeded, drills.length)}), ${by('PASSED')} fully proven, ` +
    `${by('NOT PROVEN')} NOT PROVEN, ${by('MISSED')} MISSED an objective, ${by('FAILED')} FAILED.`;
}

export function renderHistoryHtml(p: HistoryPage): string {
  const { drills } = p;
  const body: string[] = ['<header><p class="eyebrow">tykdr · drill history</p>',
    `<h1>DR drill history${p.plan ? `: plan ${esc(p.plan)}` : ''}</h1>`,
    `<p class="sub">From <code>${esc(p.location)}</code> · generated ${esc(formatTime(p.generatedAt.toISOString()))}</p>`];
  if (drills.length === 0) {
    body.push('<div class="banner warn" role="note"><p><strong>No drills recorded.</strong> Run <code>tykdr drill --plan full</code>.</p></div></header>');
    return page('DR drill history', body);
  }
  const latest = drills[0]!;
  body.push(`<p class="summary"><strong>Latest:</strong> ${badge(VERDICT_CLASS[latest.verdict], latest.verdict)} plan ${esc(latest.plan)}, ${esc(short(latest.finishedAt))}, ${esc(why(latest))}.</p>`,
    `<p class="summary">${esc(headline(drills))}</p></header>`, '<main>');
  const plans = planSummaries(drills);
  body.push('<section aria-labelledby="h-plans"><h2 id="h-plans">Pass rate per plan</h2>',
    table(['Plan', 'Drills', 'Succeeded', 'Pass rate', 'Fully proven', 'Not proven', 'Missed', 'Failed', 'Latest RTO', 'Best / worst RTO', 'Objective'],
      plans.map((s) => [td(esc(s.plan)), td(String(s.drills), 'n'), td(String(s.succeeded), 'n'), td(percent(s.succeeded, s.drills), 'n'),
        td(String(s.proven), 'n'), td(String(s.notProven), 'n'), td(String(s.missed), 'n'), td(String(s.failed), 'n'),
        td(esc(secs(s.latest.rtoSeconds)), 'n'),
        td(s.rtos.length === 0 ? 'none' : `${esc(secs(Math.min(...s.rtos)))} / ${esc(secs(Math.max(...s.rtos)))}`, 'n'),
        td(`${esc(secs(s.objectiveSeconds))} (${esc(s.latest.rtoTier)})`, 'n')])),
    '<p class="sub">Pass rate: drills that succeeded (every step worked, every objective met). Fully proven: succeeded with no check skipped.</p></section>');
  body.push('<section aria-labelledby="h-components"><h2 id="h-components">Last success per component</h2>',
    table(['Component', 'Last proven (drill report)', 'Latest run', 'Latest result'], componentSummaries(drills).map((c) => [
      td(esc(c.component)),
      td(c.lastSuccess
        ? `${drillLink(p, c.lastSuccess, short(c.lastSuccess.finishedAt))}${c.lastSuccessSkipped > 0 ? ` <span class="st notproven">(${c.lastSuccessSkipped} check(s) skipped)</span>` : ''}`
        : st('failed', 'NEVER PROVEN')),
      td(esc(short(c.lastRun.finishedAt))),
      td(st(c.lastRunResult === 'OK' ? 'ok' : c.lastRunResult === 'FAILED' ? 'failed' : 'notproven', c.lastRunResult)),
    ])),
    '<p class="sub">Proven: a step of the component worked, with at least one check passed and none failed. NOT PROVEN: some of its checks were skipped.</p></section>');
  body.push('<section aria-labelledby="h-chart"><h2 id="h-chart">RTO per plan over time</h2>',
    `<figure><div class="scroll">${historyChartSvg(drills, 'drills-table')}</div>`,
    '<figcaption>Each point is a drill; dashed lines are the RTO objectives. The table below has the same numbers.</figcaption></figure></section>');
  body.push('<section aria-labelledby="h-drills"><h2 id="h-drills">Drills</h2>',
    table(['Finished', 'Plan', 'Verdict', 'RTO', 'Objective', 'Service restored', 'Checks', 'Why', 'Report'], drills.map((d) => [
      td(esc(short(d.finishedAt))), td(esc(d.plan)), td(badge(VERDICT_CLASS[d.verdict], d.verdict)),
      td(esc(secs(d.rtoSeconds)), 'n'), td(esc(secs(d.rtoObjectiveSeconds)), 'n'), td(esc(secs(d.serviceRestoredSeconds)), 'n'),
      td(`${d.checks.passed} passed, ${d.checks.failed} failed, ${d.checks.skipped} skipped`), td(esc(why(d))), td(drillLink(p, d)),
    ])).replace('<table>', '<table id="drills-table">'), '</section>', '</main>');
  body.push(`<footer>tykdr ${esc(p.toolVersion)} · drill history of ${drills.length} drill(s) · links open each drill's own report</footer>`);
  return page(`DR drill history${p.plan ? ` (${p.plan})` : ''}`, body);
}

/** A link to the drill's own report, showing its id (or `text`); the store key when no copy is reachable. */
function drillLink(p: HistoryPage, d: DrillRecord, text?: string): string {
  const href = p.links.get(d.id);
  const shown = text === undefined ? `<code>${esc(d.id)}</code>` : esc(text);
  if (href) return `<a href="${esc(href)}" title="${esc(`drill ${d.id}`)}">${shown}</a>`;
  return `<span title="${esc(`drill ${d.id}, report in the store: ${d.reportKey}`)}">${shown}</span>`;
}

export function renderHistoryMarkdown(p: HistoryPage): string {
  const { drills } = p;
  const out = [`# DR drill history${p.plan ? `: plan ${mdText(p.plan)}` : ''}`, '', `From ${mdCode(p.location)} · generated ${formatTime(p.generatedAt.toISOString())}`, ''];
  if (drills.length === 0) return [...out, '**No drills recorded.** Run `tykdr drill --plan full`.', ''].join('\n');
  const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const head = (cells: string[]): string[] => [row(cells), `|${cells.map(() => '---').join('|')}|`];
  const latest = drills[0]!;
  out.push(`**Latest:** **${latest.verdict}** plan ${mdText(latest.plan)}, ${short(latest.finishedAt)}, ${mdText(why(latest))}.`, '', mdText(headline(drills)), '',
    '## Pass rate per plan', '',
    ...head(['Plan', 'Drills', 'Succeeded', 'Pass rate', 'Fully proven', 'Not proven', 'Missed', 'Failed', 'Latest RTO', 'Objective']),
    ...planSummaries(drills).map((s) => row([mdText(s.plan), String(s.drills), String(s.succeeded), percent(s.succeeded, s.drills), String(s.proven),
      String(s.notProven), String(s.missed), String(s.failed), secs(s.latest.rtoSeconds), `${secs(s.objectiveSeconds)} (${mdText(s.latest.rtoTier)})`])),
    '', '## Last success per component', '',
    ...head(['Component', 'Last proven', 'In drill', 'Latest result']),
    ...componentSummaries(drills).map((c) => row([mdText(c.component),
      c.lastSuccess ? `${short(c.lastSuccess.finishedAt)}${c.lastSuccessSkipped > 0 ? ` (${c.lastSuccessSkipped} check(s) skipped)` : ''}` : '**NEVER PROVEN**',
      c.lastSuccess ? mdLink(p, c.lastSuccess) : '-', `**${c.lastRunResult}** (${short(c.lastRun.finishedAt)})`])),
    '', '## Drills', '',
    ...head(['Finished', 'Plan', 'Verdict', 'RTO', 'Objective', 'Service restored', 'Why', 'Report']),
    ...drills.map((d) => row([short(d.finishedAt), mdText(d.plan), `**${d.verdict}**`, secs(d.rtoSeconds), secs(d.rtoObjectiveSeconds),
      secs(d.serviceRestoredSeconds), mdText(why(d)), mdLink(p, d)])),
    '', '---', '', `_tykdr ${mdText(p.toolVersion)}_`, '');
  return out.join('\n');
}

function mdLink(p: HistoryPage, d: DrillRecord): string {
  const href = p.links.get(d.id);
  return href ? `[${mdText(d.id)}](<${href.replace(/[<>]/g, encodeURIComponent)}>)` : mdCode(d.reportKey, true);
}
