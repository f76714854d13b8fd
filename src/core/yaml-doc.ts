import { LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { badInput, type TykdrError } from './errors.js';

export interface YamlSource {
  doc: Document;
  /** ", line N" for a path in the document, or "" when the path has no node. */
  lineOf(p: ReadonlyArray<PropertyKey>): string;
}

/** Parses YAML keeping positions, so every later error can name the line. */
export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lineCounter.linePos(e.pos[0]);
    const line = text.split('\n')[pos.line - 1] ?? '';
    // The classic: `key: { a: \${VAR} }` reads `{` of \${...} as the start of a nested flow mapping.
    const fix = /\$\{/.test(line)
      ? 'put ${VAR} references in quotes when they sit inside { } or [ ] (key: "${VAR}"), then check the rest of the line'
      : 'fix the YAML syntax (indent with spaces; quote values that contain ": ", "#", "{" or "[")';
    throw badInput(`${file}, line ${pos.line}: YAML syntax error: ${e.message.split('\n')[0]}`, fix);
  }
  const lineOf = (p: ReadonlyArray<PropertyKey>): string => {
    const node = doc.getIn(p.map((k) => (typeof k === 'number' ? k : String(k))), true) as Node | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? '' : `, line ${lineCounter.linePos(offset).line}`;
  };
  return { doc, lineOf };
}

/**
 * Turns the first zod issue into an error naming file, line, dotted path and the bad value. A value is
 * shown only when it is a scalar (never a whole section, which may hold secrets) and `hide` does not claim
 * its path (secret fields, values read from the environment). An unknown key is named with its own line.
 */
export function schemaError(
  error: z.ZodError,
  data: unknown,
  file: string,
  lineOf: YamlSource['lineOf'],
  opts: { secretKeys?: ReadonlySet<string>; hide?: (p: ReadonlyArray<PropertyKey>) => boolean; fix: string },
): TykdrError {
  const issue = error.issues[0]!;
  const p = issue.path;
  const dotted = p.length === 0 ? '(top level)' : p.map(String).join('.');
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    const at = lineOf([...p, issue.keys[0]!]) || lineOf(p);
    const where = p.length === 0 ? 'at the top level' : `in ${dotted}`;
    return badInput(`${file}${at}: unknown key ${keys} ${where}${more}`, `remove or correct ${keys} (see \`tykdr init\` for the keys each section takes)`);
  }
  let value: unknown = data;
  for (const k of p) value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k] : undefined;
  const secret = p.some((k) => opts.secretKeys?.has(String(k))) || (opts.hide?.(p) ?? false);
  return badInput(`${file}${lineOf(p)}: ${dotted}${shownValue(value, secret)}: ${issue.message}${more}`, opts.fix);
}

function shownValue(value: unknown, secret: boolean): string {
  if (value === undefined || (value !== null && typeof value === 'object')) return '';
  if (secret) return ' (value hidden)';
  const text = JSON.stringify(value);
  return ` ${text.length > 80 ? `${text.slice(0, 77)}..."` : text}`;
}
