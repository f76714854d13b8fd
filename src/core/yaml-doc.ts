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
    throw badInput(`${file}, line ${pos.line}: YAML syntax error: ${e.message.split('\n')[0]}`, 'fix the YAML syntax');
  }
  const lineOf = (p: ReadonlyArray<PropertyKey>): string => {
    const node = doc.getIn(p.map((k) => (typeof k === 'number' ? k : String(k))), true) as Node | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? '' : `, line ${lineCounter.linePos(offset).line}`;
  };
  return { doc, lineOf };
}

/**
 * Turns the first zod issue into an error naming file, line, dotted path and the bad value
 * (hidden when the path looks secret).
 */
export function schemaError(
  error: z.ZodError,
  data: unknown,
  file: string,
  lineOf: YamlSource['lineOf'],
  opts: { secretKeys?: ReadonlySet<string>; fix: string },
): TykdrError {
  const issue = error.issues[0]!;
  const p = issue.path;
  const dotted = p.length === 0 ? '(top level)' : p.map(String).join('.');
  let value: unknown = data;
  for (const k of p) value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k] : undefined;
  const secret = p.some((k) => opts.secretKeys?.has(String(k)));
  const shown = value === undefined ? '' : secret ? ' (value hidden)' : ` ${JSON.stringify(value)}`;
  let fix = opts.fix;
  if (issue.code === 'unrecognized_keys') fix = `remove or correct ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return badInput(`${file}${lineOf(p)}: ${dotted}${shown}: ${issue.message}${more}`, fix);
}
