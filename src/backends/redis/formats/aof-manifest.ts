import { integrityError } from '../../../core/errors.js';

/**
 * Redis 7's multi-part AOF manifest (src/aof.c): one line per file, `file <name> seq <n> type <b|h|i>`,
 * written with sdscatrepr (so a name may be quoted) and read back with sdssplitargs.
 *   b  the base file (`<appendfilename>.<seq>.base.rdb`, or `.base.aof` without the RDB preamble)
 *   i  an incremental file, appended to (`<appendfilename>.<seq>.incr.aof`); the last one is live
 *   h  a history file, waiting to be deleted after a rewrite: not needed to load
 */
export interface AofManifestEntry {
  name: string;
  seq: number;
  type: 'b' | 'h' | 'i';
}

export interface AofManifest {
  base: AofManifestEntry | null;
  /** Incremental files in sequence order; Redis loads them after the base, the last one is being appended to. */
  incr: AofManifestEntry[];
  history: AofManifestEntry[];
}

export function parseAofManifest(text: string, where: string): AofManifest {
  const out: AofManifest = { base: null, incr: [], history: [] };
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const bad = (why: string) => integrityError(`${where}, line ${i + 1}: ${why}: ${JSON.stringify(line.slice(0, 120))}`, 'the AOF manifest is damaged: check the Redis log and run redis-check-aof on the folder');
    const args = splitArgs(line);
    if (args === null) throw bad('unbalanced quotes');
    const fields = new Map<string, string>();
    for (let k = 0; k + 1 < args.length; k += 2) fields.set(args[k]!, args[k + 1]!);
    if (args.length % 2 !== 0) throw bad('odd number of fields');
    const name = fields.get('file');
    const seq = Number(fields.get('seq'));
    const type = fields.get('type');
    if (!name || name.includes('/') || name === '.' || name === '..') throw bad('missing or invalid file name');
    if (!Number.isInteger(seq) || seq < 0) throw bad('missing or invalid seq');
    if (type !== 'b' && type !== 'h' && type !== 'i') throw bad(`unknown type ${JSON.stringify(type)}`);
    const entry: AofManifestEntry = { name, seq, type };
    if (type === 'b') {
      if (out.base) throw bad('a second base file');
      out.base = entry;
    } else if (type === 'i') out.incr.push(entry);
    else out.history.push(entry);
  });
  out.incr.sort((a, b) => a.seq - b.seq);
  if (out.base === null && out.incr.length === 0) throw integrityError(`${where} lists no base and no incremental file`, 'the AOF manifest is damaged or empty');
  return out;
}

/** sdssplitargs: words separated by spaces, "double quoted" with \n \r \t \b \a \\ \" \xHH escapes, or 'single quoted'. Null on unbalanced quotes. */
export function splitArgs(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    const q = line[i];
    if (q === '"' || q === "'") {
      i++;
      let closed = false;
      while (i < line.length) {
        const ch = line[i]!;
        if (q === '"' && ch === '\\' && i + 1 < line.length) {
          const n = line[i + 1]!;
          if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
            word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
            i += 4;
            continue;
          }
          word += ({ n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' } as Record<string, string>)[n] ?? n;
          i += 2;
          continue;
        }
        if (q === "'" && ch === '\\' && line[i + 1] === "'") {
          word += "'";
          i += 2;
          continue;
        }
        if (ch === q) {
          closed = true;
          i++;
          break;
        }
        word += ch;
        i++;
      }
      if (!closed || (i < line.length && !/\s/.test(line[i]!))) return null;
    } else {
      while (i < line.length && !/\s/.test(line[i]!)) word += line[i++];
    }
    out.push(word);
  }
  return out;
}
