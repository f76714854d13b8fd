import { formatBytes, formatCount, formatDuration } from '../duration.js';
import { toPlain } from './render-json.js';

/*
 * Free-form step details and check evidence as labelled tables for people: one row per key, nested
 * objects as sub-tables, lists of like records as a grid, numbers in units chosen by the key's name.
 * Never one-line JSON. Both renderers draw the same tree, so Markdown and HTML show the same rows.
 */

export type DetailNode =
  | { kind: 'text'; text: string }
  | { kind: 'list'; items: DetailNode[] }
  | { kind: 'table'; rows: DetailRow[] }
  | { kind: 'grid'; columns: Array<{ key: string; label: string }>; rows: string[][] };

export interface DetailRow {
  /** The key as the engine wrote it (kept for search and tests). */
  key: string;
  /** The key for people: "keys_restored" -> "Keys restored", "timeToReadyMs" -> "Time to ready". */
  label: string;
  value: DetailNode;
}

export const REDACTED = '[redacted]';

/**
 * Keys whose values are secrets whatever an engine put there. Secrets already redact themselves
 * (core/secret.ts); this is the second lock, so a plain string under such a key never reaches a page.
 */
const SECRET_KEY = /(pass(word|phrase)?|secret|token|credential|private[_-]?key|api[_-]?key|auth(orization)?)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.replace(/[_-]?(value|hash)$/i, ''));
}

/** "keys_restored" -> "Keys restored"; "timeToReadyMs" -> "Time to ready"; "max_drift_ms" -> "Max drift". */
export function detailLabel(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase()
    .replace(/ ms$/, '');
  const text = words === '' ? key : words;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One value for people: bytes and milliseconds (by key name) in units, numbers grouped, yes/no, "none". */
export function formatValue(key: string, v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') {
    if (/bytes/i.test(key)) return `${formatBytes(v)} (${formatCount(v)} bytes)`;
    if (/(Ms|_ms|^ms)$/.test(key)) return formatDuration(v);
    return formatCount(v);
  }
  if (typeof v === 'string') return v === '' ? '(empty)' : v;
  return String(v);
}

const isScalar = (v: unknown): boolean => v === null || typeof v !== 'object';
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The tree of a details or evidence value; `key` decides units and redaction of scalars. */
export function detailTree(value: unknown, key = ''): DetailNode {
  return node(toPlain(value), key);
}

function node(v: unknown, key: string): DetailNode {
  // Only text is redacted by name: a number under "apikey" is a count of Tyk's key class, not a key.
  if (key !== '' && isSecretKey(key) && typeof v === 'string' && v !== REDACTED) return { kind: 'text', text: REDACTED };
  if (isScalar(v)) return { kind: 'text', text: formatValue(key, v) };
  if (Array.isArray(v)) {
    if (v.length === 0) return { kind: 'text', text: 'none' };
    if (v.every(isScalar)) return { kind: 'text', text: v.map((x) => formatValue(key, x)).join(', ') };
    if (v.every((x) => isRecord(x) && Object.values(x).every(isScalar))) {
      const keys = [...new Set(v.flatMap((x) => Object.keys(x as object)))];
      if (keys.length > 0 && keys.length <= 8) {
        return {
          kind: 'grid',
          columns: keys.map((k) => ({ key: k, label: detailLabel(k) })),
          rows: v.map((x) => keys.map((k) => {
            const cell = (x as Record<string, unknown>)[k];
            return isSecretKey(k) && typeof cell === 'string' ? REDACTED : cell === undefined ? '' : formatValue(k, cell);
          })),
        };
      }
    }
    return { kind: 'list', items: v.map((x) => node(x, key)) };
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return { kind: 'text', text: 'none' };
  // A small set of counts (keys per class, per database) reads best as one row with a column each.
  if (entries.length >= 3 && entries.length <= 8 && entries.every(([, x]) => typeof x === 'number')) {
    return { kind: 'grid', columns: entries.map(([k]) => ({ key: k, label: detailLabel(k) })), rows: [entries.map(([k, x]) => formatValue(k, x))] };
  }
  return { kind: 'table', rows: entries.map(([k, x]) => ({ key: k, label: detailLabel(k), value: node(x, k) })) };
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** HTML for a tree: key/value tables (<th scope="row">), nested tables, grids with column headers, lists. */
export function detailHtml(n: DetailNode): string {
  switch (n.kind) {
    case 'text':
      return esc(n.text);
    case 'list':
      return `<ol class="items">${n.items.map((i) => `<li>${detailHtml(i)}</li>`).join('')}</ol>`;
    case 'grid':
      return `<div class="scroll"><table class="grid"><thead><tr>${n.columns.map((c) => `<th scope="col" data-key="${esc(c.key)}">${esc(c.label)}</th>`).join('')}</tr></thead>` +
        `<tbody>${n.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
    case 'table':
      return `<table class="kv"><tbody>${n.rows.map((r) =>
        `<tr><th scope="row" data-key="${esc(r.key)}">${esc(r.label)}</th><td>${detailHtml(r.value)}</td></tr>`).join('')}</tbody></table>`;
  }
}

/**
 * Markdown for a tree: the top level's plain values in one Field | Value table; each nested object under
 * its own bold label with a table whose deeper levels read "Outer › Inner"; grids as tables.
 * `text` escapes a cell (mdText), so user data cannot break the table.
 */
export function detailMarkdown(n: DetailNode, text: (s: string) => string): string[] {
  if (n.kind !== 'table') return [...flatMarkdown(n, '', text).map(([, v]) => v), ''];
  const out: string[] = [];
  const plain = n.rows.filter((r) => r.value.kind === 'text' || r.value.kind === 'list');
  if (plain.length > 0) out.push(...kvTable(plain.flatMap((r) => flatMarkdown(r.value, r.label, text)), text), '');
  for (const r of n.rows.filter((x) => x.value.kind === 'table' || x.value.kind === 'grid')) {
    out.push(`**${text(r.label)}**`, '');
    const v = r.value;
    if (v.kind === 'grid') out.push(...gridTable(v, text), '');
    else if (v.kind === 'table') out.push(...kvTable(v.rows.flatMap((x) => flatMarkdown(x.value, x.label, text)), text), '');
  }
  return out;
}

/** Rows [label path, cell text] of a node, nested labels joined with " › ". */
function flatMarkdown(n: DetailNode, label: string, text: (s: string) => string): Array<[string, string]> {
  const join = (a: string, b: string): string => (a === '' ? b : `${a} › ${b}`);
  switch (n.kind) {
    case 'text':
      return [[label, text(n.text)]];
    case 'list':
      return n.items.flatMap((i, k) => flatMarkdown(i, join(label, String(k + 1)), text));
    case 'grid':
      return n.rows.flatMap((row, k) => row.map((c, j) =>
        [join(n.rows.length === 1 ? label : join(label, String(k + 1)), n.columns[j]!.label), text(c)] as [string, string]));
    case 'table':
      return n.rows.flatMap((r) => flatMarkdown(r.value, join(label, r.label), text));
  }
}

function kvTable(rows: Array<[string, string]>, text: (s: string) => string): string[] {
  return ['| Field | Value |', '|---|---|', ...rows.map(([k, v]) => `| ${text(k)} | ${v} |`)];
}

function gridTable(g: Extract<DetailNode, { kind: 'grid' }>, text: (s: string) => string): string[] {
  return [`| ${g.columns.map((c) => text(c.label)).join(' | ')} |`, `|${g.columns.map(() => '---').join('|')}|`,
    ...g.rows.map((r) => `| ${r.map(text).join(' | ')} |`)];
}
