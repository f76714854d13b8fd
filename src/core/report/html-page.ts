import { escapeHtml as esc, statusLabel } from './render-markdown.js';
import { cls } from './timeline-svg.js';

/*
 * The parts every tykdr HTML page shares: one stylesheet (inline; no external assets, no scripts),
 * readable from a phone to a printed A4 page, and the small element helpers.
 * Every string that comes from a report goes through esc(); CSS classes come only from cls().
 */

export const CSS = `
:root{--ok:#1a7f37;--fail:#cf222e;--skip:#57606a;--warn:#9a6700;--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);max-width:1100px;margin:24px auto;padding:0 24px}
h1{font-size:26px;margin:2px 0 12px}h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:4px;margin:28px 0 10px}
h3{font-size:15px;margin:0 0 4px}h4{font-size:14px;margin:10px 0 4px}code,pre{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.summary{font-size:15px;margin:6px 0}.summary.missed strong{color:var(--fail)}
.eyebrow{color:var(--muted);text-transform:uppercase;letter-spacing:.06em;font-size:12px;margin:0}
.badge{display:inline-block;white-space:nowrap;padding:1px 10px;border-radius:12px;font-size:14px;font-weight:700;color:#fff;vertical-align:middle;background:var(--skip)}
.badge.succeeded,.badge.ok,.badge.passed,.badge.met{background:var(--ok)}.badge.failed,.badge.missed{background:var(--fail)}.badge.dry{background:#0969da}
.badge.notproven{background:#fff8c5;color:#6c4a00;border:1px solid var(--warn)}
.banner{border-left:5px solid;padding:8px 14px;margin:10px 0;border-radius:4px}.banner p,.banner ul{margin:2px 0}
.banner.failed{border-color:var(--fail);background:#ffebe9}.banner.warn{border-color:var(--warn);background:#fff8c5}.banner.dry{border-color:#0969da;background:#ddf4ff}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}td.n{text-align:right;white-space:nowrap}td{overflow-wrap:break-word}table.kv td{overflow-wrap:anywhere}
table.kv{width:auto;min-width:50%;margin:4px 0}table.kv th{width:1%;white-space:nowrap;font-weight:500;color:var(--muted)}
table.kv table.kv,table.kv table.grid{margin:0;min-width:0}table.kv table.kv th{background:#fff}
table.grid{width:auto}ol.items{margin:0;padding-left:20px}
.scroll{overflow-x:auto;max-width:100%}
.st{font-weight:700}.st.ok,.st.passed,.st.met,.st.succeeded{color:var(--ok);fill:var(--ok)}.st.failed,.st.missed{color:var(--fail);fill:var(--fail)}.st.skipped,.st.unknown,.st.notproven{color:var(--skip);fill:var(--skip)}
article{border:1px solid var(--line);border-left:5px solid var(--skip);border-radius:6px;padding:10px 16px;margin:12px 0}
article.ok{border-left-color:var(--ok)}article.failed{border-left-color:var(--fail)}.sub{color:var(--muted);margin:0 0 6px}
details{margin:4px 0}details summary{cursor:pointer;color:#0969da}
svg.timeline,svg.chart{width:100%;min-width:720px;height:auto;font:13px -apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .grid{stroke:#eaeef2}svg .axisline{stroke:#8c959f}svg .axis,svg .dur{fill:var(--muted)}svg .label{fill:var(--ink)}svg .mark{fill:var(--ink);font-weight:600}
figure{margin:8px 0}figcaption{color:var(--muted);font-size:13px}
footer{margin-top:28px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:6px}
@media (max-width:640px){body{padding:0 10px;margin:12px auto;font-size:13px}h1{font-size:21px}dl{grid-template-columns:1fr}dt{margin-top:4px}
article{padding:8px 10px}th,td{padding:3px 5px}table.kv{min-width:0}}
@media print{body{margin:0;max-width:none;padding:0;font-size:11px}code,pre{font-size:10px}h2,h3{break-after:avoid}tr,svg,figure{break-inside:avoid}
.scroll{overflow:visible}svg.timeline,svg.chart{min-width:0}
details::details-content{content-visibility:visible;display:contents}details>*{display:block}details summary{color:var(--muted)}
*{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
`;

export const badge = (status: string, text = statusLabel(status)): string => `<span class="badge ${cls(status)}">${esc(text)}</span>`;
export const st = (status: string, text = statusLabel(status)): string => `<span class="st ${cls(status)}">${esc(text)}</span>`;
export const td = (s: string, cl = ''): string => `<td${cl ? ` class="${cl}"` : ''}>${s}</td>`;
export const table = (head: string[], rows: string[][], caption?: string): string =>
  `<div class="scroll"><table>${caption ? `<caption class="sub">${caption}</caption>` : ''}<thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead><tbody>\n` +
  `${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}\n</tbody></table></div>`;
export const dl = (pairs: [string, string][]): string => `<dl>${pairs.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;

/** A whole page: doctype, language, viewport, title, the stylesheet. `body` is HTML already escaped. */
export function page(title: string, body: string[]): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${esc(title)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${body.join('\n')}\n</body>\n</html>\n`;
}
