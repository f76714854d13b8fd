/**
 * Architecture check for src/: import cycles between files, cycles between top-level areas (src/core,
 * src/backends, ...), and layer rules (RULES below). No dependencies: a small scanner reads the import and
 * export statements of each .ts file (skipping comments, strings, templates and regular expressions),
 * relative specifiers are resolved to files (`./x.js` -> `./x.ts`), and the graph is checked.
 *
 *   npx tsx scripts/check-imports.ts            readable list, exit 1 if anything is found, else a one-line summary
 *   npx tsx scripts/check-imports.ts --json     the whole report as JSON (same exit codes)
 *   options: --root DIR (default: this repository), --src DIR (default: src),
 *            --no-types-in-file-cycles, --no-types-in-folder-cycles, --no-types-in-layers
 *
 * What counts as an import: `import ... from`, `import '...'`, `export ... from`, `import('...')` (dynamic),
 * `import x = require('...')`. Type-only imports are `import type ...`, `export type ... from`,
 * `import { type A, type B } from` (every name marked type), and `typeof import('...')` /
 * `import('...').Name` in type positions. An ordinary `import { A }` where A happens to be an interface is
 * a value import as far as this check knows (it reads syntax, not types). Type-only imports count
 * everywhere by default: a type cycle between two files still ties them together for a reader.
 *
 * The test test/unit/architecture.test.ts runs this over src/ and expects no finding; it also proves the
 * check on small fixture trees.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------------------
// Layer rules: data. Edit here.
//
// Patterns are paths relative to the repository root, '/'-separated:
//   `*`       any one path segment (or part of one: `*.ts`)
//   `**`      any number of segments; at the end (`folder/**`) it means "any file inside folder, at any depth"
//   `<name>`  one segment, captured: `src/backends/<kind>/**` binds kind = redis for src/backends/redis/a.ts,
//             and `<kind>` in that rule's allow/deny patterns is replaced by the captured value.
// A rule applies to every file matching `files`. For each relative import of such a file:
//   - with `deny`: importing a file matching a deny pattern is a violation, unless it also matches `allow`;
//   - with only `allow`: importing a file that matches no allow pattern is a violation.
// ---------------------------------------------------------------------------------------------------------

export interface LayerRule {
  /** Short id, shown in reports and used in the test's allow-list. */
  name: string;
  /** The importing files the rule is about. */
  files: string;
  deny?: string[];
  allow?: string[];
  /** One line on why, printed with violations. */
  why?: string;
}

export const RULES: LayerRule[] = [
  {
    name: 'core-independent',
    files: 'src/core/**',
    deny: ['src/backends/**', 'src/verify/**', 'src/commands/**', 'src/daemon/**', 'src/cli/**'],
    why: 'core defines services and interfaces; backends, checks and entry points plug into it, not the reverse',
  },
  {
    name: 'verify-only-core',
    files: 'src/verify/**',
    allow: ['src/core/**', 'src/verify/**'],
    why: 'post-restore checks use core only; kind-specific checks live with their backend',
  },
  {
    name: 'backends-below-entry-points',
    files: 'src/backends/**',
    deny: ['src/commands/**', 'src/daemon/**', 'src/cli/**'],
    why: 'backends are used by commands and the daemon, never the reverse',
  },
  {
    name: 'backend-kinds-apart',
    files: 'src/backends/<kind>/**',
    deny: ['src/backends/*/**'],
    allow: ['src/backends/<kind>/**', 'src/backends/protocol/**'],
    why: 'each backend folder stands alone (shared code goes to core or src/backends/protocol); src/backends/registry.ts wires them',
  },
];

// ---------------------------------------------------------------------------------------------------------
// Scanning one file's imports
// ---------------------------------------------------------------------------------------------------------

export type ImportKind = 'import' | 'export' | 'dynamic' | 'require';

export interface RawImport {
  specifier: string;
  kind: ImportKind;
  typeOnly: boolean;
  line: number;
}

/** A dynamic import whose argument is not a plain string: the check cannot see where it goes. */
export interface OpaqueImport {
  line: number;
  text: string;
}

type Tok =
  | { t: 'id'; v: string; line: number }
  | { t: 'str'; v: string; line: number }
  | { t: 'tmpl'; line: number }
  | { t: 'num'; line: number }
  | { t: 're'; line: number }
  | { t: 'p'; v: string; line: number };

// After these keywords an expression starts, so `/` opens a regular expression.
const KEYWORDS_BEFORE_EXPR = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else',
  'yield', 'await',
]);

const ID_START = /[\p{L}\p{Nl}_$]/u;
// An identifier (or number, or regex flags) from lastIndex on.
const ID_REST = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_$\u200c\u200d\\]*/uy;
const NUM_REST = /[\w$.]*/y;
const skipIdChars = (src: string, from: number): number => {
  ID_REST.lastIndex = from;
  ID_REST.exec(src);
  return ID_REST.lastIndex;
};

/** Splits TypeScript source into the few token kinds the import scan needs. */
export function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  const n = src.length;
  // Open `${` of template literals: the brace depth at which each one closes.
  const templateDepths: number[] = [];
  let depth = 0;

  if (src.startsWith('#!')) {
    while (i < n && src[i] !== '\n') i++;
  }

  const regexAllowed = (): boolean => {
    const prev = toks[toks.length - 1];
    if (!prev) return true;
    if (prev.t === 'id') return KEYWORDS_BEFORE_EXPR.has(prev.v);
    if (prev.t === 'p') {
      if (prev.v === ')' || prev.v === ']' || prev.v === '}') return false;
      // `a++ / 2`: after a postfix ++ or --, `/` divides
      const before = toks[toks.length - 2];
      return !((prev.v === '+' || prev.v === '-') && before?.t === 'p' && before.v === prev.v);
    }
    return false;
  };

  // Reads a template literal body from i (just after ` or after the } closing a ${...}).
  const readTemplate = (startLine: number): void => {
    let plain = '';
    let simple = true;
    while (i < n) {
      const c = src[i]!;
      if (c === '\\') {
        plain += src[i + 1] ?? '';
        if (src[i + 1] === '\n') line++;
        i += 2;
        continue;
      }
      if (c === '`') {
        i++;
        if (simple) toks.push({ t: 'str', v: plain, line: startLine });
        else toks.push({ t: 'tmpl', line: startLine });
        return;
      }
      if (c === '$' && src[i + 1] === '{') {
        i += 2;
        toks.push({ t: 'tmpl', line: startLine });
        templateDepths.push(depth);
        depth++;
        return;
      }
      if (c === '\n') line++;
      plain += c;
      i++;
    }
  };
  // A template continued after `}`: never a plain string.
  const readTemplateTail = (): void => {
    const startLine = line;
    while (i < n) {
      const c = src[i]!;
      if (c === '\\') {
        if (src[i + 1] === '\n') line++;
        i += 2;
        continue;
      }
      if (c === '`') {
        i++;
        toks.push({ t: 'tmpl', line: startLine });
        return;
      }
      if (c === '$' && src[i + 1] === '{') {
        i += 2;
        templateDepths.push(depth);
        depth++;
        return;
      }
      if (c === '\n') line++;
      i++;
    }
  };

  while (i < n) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\ufeff' || c === '\u00a0') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let v = '';
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === '\\') {
          v += src[i + 1] ?? '';
          if (src[i + 1] === '\n') line++;
          i += 2;
          continue;
        }
        if (src[i] === '\n') break; // unterminated: stop at the line end
        v += src[i];
        i++;
      }
      i++;
      toks.push({ t: 'str', v, line: startLine });
      continue;
    }
    if (c === '`') {
      i++;
      readTemplate(line);
      continue;
    }
    if (c === '/' && regexAllowed()) {
      const startLine = line;
      i++;
      let inClass = false;
      while (i < n) {
        const d = src[i]!;
        if (d === '\\') {
          i += 2;
          continue;
        }
        if (d === '\n') break; // not a regular expression after all; resume scanning on the next line
        if (inClass) {
          if (d === ']') inClass = false;
        } else if (d === '[') inClass = true;
        else if (d === '/') {
          i++;
          break;
        }
        i++;
      }
      i = skipIdChars(src, i); // flags
      toks.push({ t: 're', line: startLine });
      continue;
    }
    if (ID_START.test(c) || c === '\\') {
      const j = skipIdChars(src, i + 1);
      toks.push({ t: 'id', v: src.slice(i, j), line });
      i = j;
      continue;
    }
    if ((c >= '0' && c <= '9') || (c === '.' && src[i + 1]! >= '0' && src[i + 1]! <= '9')) {
      NUM_REST.lastIndex = i + 1;
      NUM_REST.exec(src);
      const j = NUM_REST.lastIndex;
      toks.push({ t: 'num', line });
      i = j;
      continue;
    }
    if (c === '{') {
      depth++;
    } else if (c === '}') {
      if (templateDepths.length > 0 && templateDepths[templateDepths.length - 1] === depth - 1) {
        templateDepths.pop();
        depth--;
        i++;
        readTemplateTail();
        continue;
      }
      depth--;
    }
    toks.push({ t: 'p', v: c, line });
    i++;
  }
  return toks;
}

const isId = (t: Tok | undefined, v?: string): boolean => t?.t === 'id' && (v === undefined || t.v === v);
const isP = (t: Tok | undefined, v: string): boolean => t?.t === 'p' && t.v === v;
const PROMISE_METHODS = new Set(['then', 'catch', 'finally']);

/**
 * Reads the `{ a, type B, c as d }` list starting at toks[j] (`{`). Returns the index after `}` and whether
 * the list names at least one binding and every one is marked `type`.
 */
function readNamedList(toks: Tok[], j: number): { next: number; allTypes: boolean } {
  let k = j + 1;
  let names = 0;
  let typed = 0;
  let atStart = true;
  while (k < toks.length && !isP(toks[k], '}')) {
    const t = toks[k]!;
    if (isP(t, ',')) {
      atStart = true;
    } else if (atStart) {
      atStart = false;
      names++;
      // `type A` / `type A as B`, but not a binding called `type` (`type,` / `type }` / `type as x`)
      if (isId(t, 'type') && toks[k + 1] !== undefined && !isP(toks[k + 1], ',') && !isP(toks[k + 1], '}') && !(isId(toks[k + 1], 'as') && !isId(toks[k + 2], 'as'))) {
        typed++;
      }
    }
    k++;
  }
  return { next: k + 1, allTypes: names > 0 && typed === names };
}

/** The relative and package imports of one TypeScript source text. */
export function extractImports(src: string): { imports: RawImport[]; opaque: OpaqueImport[] } {
  const toks = tokenize(src);
  const imports: RawImport[] = [];
  const opaque: OpaqueImport[] = [];
  for (let i = 0; i < toks.length; i++) {
    const tok = toks[i]!;
    if (tok.t !== 'id' || (tok.v !== 'import' && tok.v !== 'export')) continue;
    const prev = toks[i - 1];
    if (isP(prev, '.')) continue; // a property called import/export
    const next = toks[i + 1];

    if (tok.v === 'import' && isP(next, '(')) {
      let close = i + 2; // the matching `)`
      for (let paren = 1; close < toks.length; close++) {
        if (isP(toks[close], '(')) paren++;
        else if (isP(toks[close], ')') && --paren === 0) break;
      }
      const arg = toks[i + 2];
      const after = toks[close + 1];
      const member = toks[close + 2];
      const typePosition =
        isId(prev, 'typeof') || (isP(after, '.') && member?.t === 'id' && !PROMISE_METHODS.has(member.v));
      if (arg?.t === 'str' && (close === i + 3 || isP(toks[i + 3], ','))) {
        imports.push({ specifier: arg.v, kind: 'dynamic', typeOnly: typePosition, line: tok.line });
      } else if (!typePosition) {
        // a method called import (`import(x) {`, `import(x): T {`) is not an import expression
        const method = isP(after, '{') || (isP(after, ':') && !isP(prev, '?'));
        if (!method) opaque.push({ line: tok.line, text: src.split('\n')[tok.line - 1]?.trim() ?? '' });
      }
      continue;
    }
    if (tok.v === 'import' && isP(next, '.')) continue; // import.meta

    if (tok.v === 'import') {
      let j = i + 1;
      if (toks[j]?.t === 'str') {
        imports.push({ specifier: (toks[j] as { v: string }).v, kind: 'import', typeOnly: false, line: tok.line });
        continue;
      }
      let typeOnly = false;
      if (isId(toks[j], 'type') && !isId(toks[j + 1], 'from') && !isP(toks[j + 1], ',') && !isP(toks[j + 1], '=')) {
        typeOnly = true;
        j++;
      }
      // import x = require('...')
      if (toks[j]?.t === 'id' && isP(toks[j + 1], '=')) {
        if (isId(toks[j + 2], 'require') && isP(toks[j + 3], '(') && toks[j + 4]?.t === 'str') {
          imports.push({ specifier: (toks[j + 4] as { v: string }).v, kind: 'require', typeOnly, line: tok.line });
        }
        continue;
      }
      // clause: default, `* as ns`, `{ ... }`, in any allowed combination, then `from '...'`
      let hasDefaultOrNs = false;
      let namedAllTypes = false;
      let sawNamed = false;
      while (j < toks.length) {
        const t = toks[j]!;
        if (isP(t, '{')) {
          const r = readNamedList(toks, j);
          sawNamed = true;
          namedAllTypes = r.allTypes;
          j = r.next;
        } else if (isP(t, '*')) {
          hasDefaultOrNs = true;
          j += 3; // * as ns
        } else if (isP(t, ',')) {
          j++;
        } else if (isId(t, 'from') && toks[j + 1]?.t === 'str') {
          if (!typeOnly && !hasDefaultOrNs && sawNamed && namedAllTypes) typeOnly = true;
          imports.push({ specifier: (toks[j + 1] as { v: string }).v, kind: 'import', typeOnly, line: tok.line });
          break;
        } else if (t.t === 'id' && !isId(t, 'from')) {
          hasDefaultOrNs = true;
          j++;
        } else {
          break; // not an import declaration we understand
        }
      }
      continue;
    }

    // export ... from '...'
    let j = i + 1;
    let typeOnly = false;
    if (isId(toks[j], 'type') && (isP(toks[j + 1], '{') || isP(toks[j + 1], '*'))) {
      typeOnly = true;
      j++;
    }
    if (isP(toks[j], '*')) {
      j++;
      if (isId(toks[j], 'as')) j += 2;
    } else if (isP(toks[j], '{')) {
      const r = readNamedList(toks, j);
      if (r.allTypes) typeOnly = true;
      j = r.next;
    } else {
      continue;
    }
    if (isId(toks[j], 'from') && toks[j + 1]?.t === 'str') {
      imports.push({ specifier: (toks[j + 1] as { v: string }).v, kind: 'export', typeOnly, line: tok.line });
    }
  }
  return { imports, opaque };
}

// ---------------------------------------------------------------------------------------------------------
// The graph
// ---------------------------------------------------------------------------------------------------------

export interface Edge {
  /** Importing file, repository-relative ('src/core/backup.ts'). */
  from: string;
  /** Imported file, repository-relative. */
  to: string;
  specifier: string;
  kind: ImportKind;
  typeOnly: boolean;
  line: number;
}

export interface CheckOptions {
  /** The folder scanned, relative to root. Default 'src'. */
  srcDir?: string;
  rules?: LayerRule[];
  /** Count type-only imports in file-level cycles. Default false. */
  typesInFileCycles?: boolean;
  /** Count type-only imports in folder-level cycles. Default true. */
  typesInFolderCycles?: boolean;
  /** Count type-only imports for layer rules. Default true. */
  typesInLayers?: boolean;
  /** How many folders below srcDir make an area for folder cycles. Default 1 (src/core, src/backends, ...). */
  areaDepth?: number;
  /** Stop listing cycles after this many per graph (a dense graph has very many). Default 500. */
  maxCycles?: number;
}

export interface Violation {
  rule: string;
  from: string;
  to: string;
  line: number;
  kind: ImportKind;
  typeOnly: boolean;
  why?: string;
}

export interface FolderCycle {
  /** Areas in order, first repeated at the end. */
  path: string[];
  /** For each hop, the imports that make it. */
  hops: Array<{ from: string; to: string; imports: Array<{ file: string; line: number; target: string }> }>;
}

export interface Report {
  root: string;
  srcDir: string;
  files: number;
  imports: number;
  /** Each cycle once, as files in order, starting from the alphabetically first, first repeated at the end. */
  fileCycles: string[][];
  fileCyclesTruncated: boolean;
  folderCycles: FolderCycle[];
  folderCyclesTruncated: boolean;
  violations: Violation[];
  /** Relative imports that resolve to no file under srcDir. */
  unresolved: Array<{ from: string; specifier: string; line: number }>;
  /** Dynamic imports of a computed path (not checked; listed as warnings). */
  opaque: Array<{ from: string; line: number; text: string }>;
  rules: LayerRule[];
}

const toPosix = (p: string): string => p.split(path.sep).join('/');

function listTsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTsFiles(full));
    else if (entry.isFile() && /\.(ts|mts|cts)$/.test(entry.name)) out.push(full);
  }
  return out;
}

const JS_TO_TS: Record<string, string[]> = { '.js': ['.ts', '.d.ts'], '.mjs': ['.mts', '.d.mts'], '.cjs': ['.cts', '.d.cts'], '.jsx': ['.tsx'] };

/** Resolves a relative specifier from a repository-relative file to a repository-relative .ts file, if any. */
export function resolveSpecifier(fromFile: string, specifier: string, known: Set<string>): string | null {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), specifier));
  const candidates: string[] = [];
  const ext = path.posix.extname(base);
  if (JS_TO_TS[ext]) {
    const stem = base.slice(0, -ext.length);
    for (const e of JS_TO_TS[ext]!) candidates.push(stem + e);
  }
  candidates.push(base, `${base}.ts`, `${base}/index.ts`);
  return candidates.find((c) => known.has(c)) ?? null;
}

// ---------------------------------------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------------------------------------

const segmentRegex = (seg: string): RegExp =>
  new RegExp(`^${seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);

/**
 * Matches a repository-relative path against a pattern (see RULES). Returns the captured `<name>` values,
 * or null when it does not match.
 */
export function matchPattern(pattern: string, file: string, bound: Record<string, string> = {}): Record<string, string> | null {
  const ps = pattern.split('/').filter((s) => s !== '');
  const fs = file.split('/').filter((s) => s !== '');
  const go = (pi: number, fi: number, caps: Record<string, string>): Record<string, string> | null => {
    if (pi === ps.length) return fi === fs.length ? caps : null;
    const p = ps[pi]!;
    if (p === '**') {
      const last = pi === ps.length - 1;
      // trailing ** : one or more segments (a file inside the folder); elsewhere zero or more
      for (let k = fi + (last ? 1 : 0); k <= fs.length; k++) {
        const r = go(pi + 1, k, caps);
        if (r) return r;
      }
      return null;
    }
    if (fi === fs.length) return null;
    const f = fs[fi]!;
    const cap = /^<([A-Za-z_][\w-]*)>$/.exec(p);
    if (cap) {
      const name = cap[1]!;
      if (name in caps) return caps[name] === f ? go(pi + 1, fi + 1, caps) : null;
      return go(pi + 1, fi + 1, { ...caps, [name]: f });
    }
    return segmentRegex(p).test(f) ? go(pi + 1, fi + 1, caps) : null;
  };
  return go(0, 0, { ...bound });
}

function substitute(pattern: string, caps: Record<string, string>): string {
  return pattern.replace(/<([A-Za-z_][\w-]*)>/g, (m, name: string) => caps[name] ?? m);
}

/** True when an import of `to` by `from` breaks the rule. */
export function checkRule(rule: LayerRule, from: string, to: string): boolean {
  const caps = matchPattern(rule.files, from);
  if (!caps) return false;
  const matches = (patterns: string[] | undefined): boolean =>
    (patterns ?? []).some((p) => matchPattern(substitute(p, caps), to) !== null);
  if (rule.deny) return matches(rule.deny) && !matches(rule.allow);
  if (rule.allow) return !matches(rule.allow);
  return false;
}

function validateRules(rules: LayerRule[]): void {
  const names = new Set<string>();
  for (const r of rules) {
    if (!r.name || names.has(r.name)) throw new Error(`layer rule names must be unique and non-empty: ${JSON.stringify(r.name)}`);
    names.add(r.name);
    if (!r.deny && !r.allow) throw new Error(`layer rule ${r.name}: give deny and/or allow`);
    const captured = new Set([...r.files.matchAll(/<([A-Za-z_][\w-]*)>/g)].map((m) => m[1]));
    for (const p of [...(r.deny ?? []), ...(r.allow ?? [])]) {
      for (const m of p.matchAll(/<([A-Za-z_][\w-]*)>/g)) {
        if (!captured.has(m[1])) throw new Error(`layer rule ${r.name}: <${m[1]}> in ${p} is not captured by files: ${r.files}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cycles
// ---------------------------------------------------------------------------------------------------------

/** Strongly connected components (Tarjan), each sorted. */
function components(nodes: string[], adj: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of adj.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      out.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  return out;
}

/**
 * Every elementary cycle of a directed graph (Johnson's algorithm), each once, starting at its
 * alphabetically first node and ending with it again. Self-imports count as cycles of length one.
 * Listing every cycle (rather than one per tangle) means removing an import only ever removes cycles.
 */
export function elementaryCycles(edges: Map<string, Set<string>>, maxCycles = 500): { cycles: string[][]; truncated: boolean } {
  const nodes = [...new Set([...edges.keys(), ...[...edges.values()].flatMap((s) => [...s])])].sort();
  const order = new Map(nodes.map((n, k) => [n, k]));
  const cycles: string[][] = [];
  let truncated = false;

  for (let s = 0; s < nodes.length && !truncated; s++) {
    // subgraph of nodes >= s; the component containing nodes[s]
    const sub = new Map<string, string[]>();
    for (let k = s; k < nodes.length; k++) {
      const v = nodes[k]!;
      sub.set(v, [...(edges.get(v) ?? [])].filter((w) => order.get(w)! >= s).sort());
    }
    const comp = components(nodes.slice(s), sub).find((c) => c.includes(nodes[s]!));
    if (!comp) continue;
    const inComp = new Set(comp);
    const start = nodes[s]!;
    if (comp.length === 1 && !(edges.get(start)?.has(start) ?? false)) continue;
    const adj = (v: string): string[] => (sub.get(v) ?? []).filter((w) => inComp.has(w));
    const blocked = new Set<string>();
    const blockMap = new Map<string, Set<string>>();
    const pathStack: string[] = [];
    const unblock = (u: string): void => {
      blocked.delete(u);
      const b = blockMap.get(u);
      if (!b) return;
      blockMap.delete(u);
      for (const w of b) if (blocked.has(w)) unblock(w);
    };
    const circuit = (v: string): boolean => {
      if (truncated) return true;
      let found = false;
      pathStack.push(v);
      blocked.add(v);
      for (const w of adj(v)) {
        if (w === start) {
          if (cycles.length >= maxCycles) {
            truncated = true;
            break;
          }
          cycles.push([...pathStack, start]);
          found = true;
        } else if (!blocked.has(w)) {
          if (circuit(w)) found = true;
        }
      }
      if (found) unblock(v);
      else for (const w of adj(v)) {
        if (!blockMap.has(w)) blockMap.set(w, new Set());
        blockMap.get(w)!.add(v);
      }
      pathStack.pop();
      return found;
    };
    circuit(start);
  }
  cycles.sort((a, b) => a.length - b.length || a.join('\0').localeCompare(b.join('\0')));
  return { cycles, truncated };
}

// ---------------------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------------------

export function areaOf(file: string, srcDir: string, depth = 1): string {
  const rel = file.slice(srcDir.length + 1).split('/');
  if (rel.length <= depth) return file; // a file directly in an area-level folder is its own area
  return [srcDir, ...rel.slice(0, depth)].join('/');
}

/** Scans root/srcDir and checks it. Paths in the report are relative to root, '/'-separated. */
export function checkImports(root: string, options: CheckOptions = {}): Report {
  const srcDir = toPosix(options.srcDir ?? 'src').replace(/\/+$/, '');
  const rules = options.rules ?? RULES;
  validateRules(rules);
  const typesInFileCycles = options.typesInFileCycles ?? true;
  const typesInFolderCycles = options.typesInFolderCycles ?? true;
  const typesInLayers = options.typesInLayers ?? true;
  const areaDepth = options.areaDepth ?? 1;
  const maxCycles = options.maxCycles ?? 500;

  const absSrc = path.join(root, srcDir);
  if (!statSync(absSrc, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`no folder ${absSrc}`);
  const files = listTsFiles(absSrc).map((f) => toPosix(path.relative(root, f))).sort();
  const known = new Set(files);

  const edges: Edge[] = [];
  const unresolved: Report['unresolved'] = [];
  const opaque: Report['opaque'] = [];
  for (const file of files) {
    const { imports, opaque: op } = extractImports(readFileSync(path.join(root, file), 'utf8'));
    for (const o of op) opaque.push({ from: file, ...o });
    for (const imp of imports) {
      if (!imp.specifier.startsWith('./') && !imp.specifier.startsWith('../') && imp.specifier !== '.' && imp.specifier !== '..') continue;
      const to = resolveSpecifier(file, imp.specifier, known);
      if (!to) {
        unresolved.push({ from: file, specifier: imp.specifier, line: imp.line });
        continue;
      }
      edges.push({ from: file, to, specifier: imp.specifier, kind: imp.kind, typeOnly: imp.typeOnly, line: imp.line });
    }
  }

  // (a) file cycles
  const fileGraph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (e.typeOnly && !typesInFileCycles) continue;
    if (!fileGraph.has(e.from)) fileGraph.set(e.from, new Set());
    fileGraph.get(e.from)!.add(e.to);
  }
  const fc = elementaryCycles(fileGraph, maxCycles);

  // (b) folder cycles between areas
  const areaGraph = new Map<string, Set<string>>();
  const areaEdges = new Map<string, Array<{ file: string; line: number; target: string }>>();
  for (const e of edges) {
    if (e.typeOnly && !typesInFolderCycles) continue;
    const a = areaOf(e.from, srcDir, areaDepth);
    const b = areaOf(e.to, srcDir, areaDepth);
    if (a === b) continue;
    if (!areaGraph.has(a)) areaGraph.set(a, new Set());
    areaGraph.get(a)!.add(b);
    const key = `${a}\0${b}`;
    if (!areaEdges.has(key)) areaEdges.set(key, []);
    areaEdges.get(key)!.push({ file: e.from, line: e.line, target: e.to });
  }
  const ac = elementaryCycles(areaGraph, maxCycles);
  const folderCycles: FolderCycle[] = ac.cycles.map((cyc) => ({
    path: cyc,
    hops: cyc.slice(0, -1).map((a, k) => ({ from: a, to: cyc[k + 1]!, imports: areaEdges.get(`${a}\0${cyc[k + 1]}`) ?? [] })),
  }));

  // (c) layer rules
  const violations: Violation[] = [];
  const seen = new Set<string>();
  for (const e of edges) {
    if (e.typeOnly && !typesInLayers) continue;
    for (const rule of rules) {
      if (!checkRule(rule, e.from, e.to)) continue;
      const key = `${rule.name}\0${e.from}\0${e.to}`;
      if (seen.has(key)) continue;
      seen.add(key);
      violations.push({ rule: rule.name, from: e.from, to: e.to, line: e.line, kind: e.kind, typeOnly: e.typeOnly, ...(rule.why ? { why: rule.why } : {}) });
    }
  }
  violations.sort((x, y) => rules.findIndex((r) => r.name === x.rule) - rules.findIndex((r) => r.name === y.rule) || x.from.localeCompare(y.from) || x.to.localeCompare(y.to));

  return {
    root,
    srcDir,
    files: files.length,
    imports: edges.length,
    fileCycles: fc.cycles,
    fileCyclesTruncated: fc.truncated,
    folderCycles,
    folderCyclesTruncated: ac.truncated,
    violations,
    unresolved,
    opaque,
    rules,
  };
}

/**
 * One stable line per finding, for allow-lists (test/unit/architecture.test.ts):
 *   'cycle: src/a.ts -> src/b.ts -> src/a.ts'
 *   'folder cycle: src/backends -> src/core -> src/backends'
 *   'layer core-independent: src/core/x.ts -> src/backends/y.ts'
 *   'unresolved: src/a.ts -> ./missing.js'
 */
export function findingKeys(report: Report): string[] {
  return [
    ...report.fileCycles.map((c) => `cycle: ${c.join(' -> ')}`),
    ...(report.fileCyclesTruncated ? ['cycle: (list truncated: raise maxCycles)'] : []),
    ...report.folderCycles.map((c) => `folder cycle: ${c.path.join(' -> ')}`),
    ...(report.folderCyclesTruncated ? ['folder cycle: (list truncated: raise maxCycles)'] : []),
    ...report.violations.map((v) => `layer ${v.rule}: ${v.from} -> ${v.to}`),
    ...report.unresolved.map((u) => `unresolved: ${u.from} -> ${u.specifier}`),
  ];
}

export function hasFindings(report: Report): boolean {
  return findingKeys(report).length > 0;
}

export function formatReport(report: Report): string {
  const n = findingKeys(report).length;
  const scope = `${report.files} files, ${report.imports} relative imports in ${report.srcDir}/`;
  const warn = report.opaque.length
    ? [`warning: ${report.opaque.length} dynamic import(s) of a computed path, not checked:`, ...report.opaque.map((o) => `  ${o.from}:${o.line}  ${o.text}`)]
    : [];
  if (n === 0) {
    return [...warn, `architecture OK: ${scope}; no import cycles, no folder cycles, no layer violations (${report.rules.length} rules)`].join('\n');
  }
  const out: string[] = [`architecture check: ${n} finding(s) in ${scope}`];
  if (report.fileCycles.length) {
    out.push('', `File import cycles (${report.fileCycles.length}${report.fileCyclesTruncated ? ', truncated' : ''}):`);
    for (const c of report.fileCycles) out.push(`  ${c.join(' -> ')}`);
  }
  if (report.folderCycles.length) {
    out.push('', `Folder cycles between areas (${report.folderCycles.length}${report.folderCyclesTruncated ? ', truncated' : ''}):`);
    for (const c of report.folderCycles) {
      out.push(`  ${c.path.join(' -> ')}`);
      for (const h of c.hops) {
        const shown = h.imports.slice(0, 3).map((i) => `${i.file}:${i.line} -> ${i.target}`);
        const more = h.imports.length > 3 ? ` (+${h.imports.length - 3} more)` : '';
        out.push(`    ${h.from} -> ${h.to}: ${shown.join(', ')}${more}`);
      }
    }
  }
  if (report.violations.length) {
    out.push('', `Layer violations (${report.violations.length}):`);
    let rule = '';
    for (const v of report.violations) {
      if (v.rule !== rule) {
        rule = v.rule;
        out.push(`  [${rule}]${v.why ? ` ${v.why}` : ''}`);
      }
      const tag = [v.typeOnly ? 'type' : '', v.kind === 'dynamic' ? 'dynamic' : ''].filter(Boolean).join(', ');
      out.push(`    ${v.from}:${v.line} -> ${v.to}${tag ? ` (${tag})` : ''}`);
    }
  }
  if (report.unresolved.length) {
    out.push('', `Relative imports that resolve to no file (${report.unresolved.length}):`);
    for (const u of report.unresolved) out.push(`  ${u.from}:${u.line} -> ${u.specifier}`);
  }
  if (warn.length) out.push('', ...warn);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------------------

function main(argv: string[]): number {
  const defaultRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  let root = defaultRoot;
  const options: CheckOptions = {};
  let json = false;
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k]!;
    if (a === '--json') json = true;
    else if (a === '--root') root = path.resolve(argv[++k] ?? '.');
    else if (a === '--src') options.srcDir = argv[++k] ?? 'src';
    else if (a === '--types-in-file-cycles') options.typesInFileCycles = true;
    else if (a === '--no-types-in-file-cycles') options.typesInFileCycles = false;
    else if (a === '--no-types-in-folder-cycles') options.typesInFolderCycles = false;
    else if (a === '--no-types-in-layers') options.typesInLayers = false;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: npx tsx scripts/check-imports.ts [--json] [--root DIR] [--src DIR] [--no-types-in-file-cycles] [--no-types-in-folder-cycles] [--no-types-in-layers]\n',
      );
      return 0;
    } else {
      process.stderr.write(`unknown option ${a} (try --help)\n`);
      return 2;
    }
  }
  const report = checkImports(root, options);
  if (json) process.stdout.write(`${JSON.stringify({ ...report, findings: findingKeys(report) }, null, 2)}\n`);
  else process.stdout.write(`${formatReport(report)}\n`);
  return hasFindings(report) ? 1 : 0;
}

/** True when this file is the script being run (not imported by a test). */
function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`check-imports: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}
