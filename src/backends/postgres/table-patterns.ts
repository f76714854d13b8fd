/**
 * pg_dump / psql table patterns ("tyk_analytics_[0-9]*", "public.tyk_aggregated", "\"Mixed Case\"") turned into
 * anchored POSIX regular expressions, as psql's patternToSQLRegex does: outside double quotes `*` is any text, `?`
 * one character, letters fold to lower case, `.` separates schema and table, other characters pass through (so
 * `[0-9]` is a bracket expression); inside quotes everything is literal. A pattern without a schema matches tables
 * of that name in every schema.
 *
 * tykdr matches the patterns in SQL (the `~` operator, as pg_dump does), inside the backup's snapshot, and hands
 * pg_dump the exact table names: the tables it records as excluded are then exactly those whose data pg_dump left out.
 */
export interface TablePattern {
  pattern: string;
  /** Regex for the schema name, or null for "any schema". */
  schema: string | null;
  table: string;
}

const SPECIAL = '|*+?()[]{}.^\\';

export function compileTablePattern(pattern: string): TablePattern {
  const parts: string[] = [''];
  let inQuotes = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    const cur = parts.length - 1;
    if (ch === '"') {
      if (inQuotes && pattern[i + 1] === '"') {
        parts[cur] += '"';
        i++;
      } else inQuotes = !inQuotes;
    } else if (!inQuotes && ch === '*') parts[cur] += '.*';
    else if (!inQuotes && ch === '?') parts[cur] += '.';
    else if (!inQuotes && ch === '.') parts.push('');
    else if (ch === '$') parts[cur] += '\\$';
    else if (inQuotes && SPECIAL.includes(ch)) parts[cur] += `\\${ch}`;
    else if (!inQuotes && ch === '[' && pattern[i + 1] === ']') parts[cur] += '\\[';
    else parts[cur] += inQuotes ? ch : ch.toLowerCase();
  }
  const anchored = (s: string) => `^(${s})$`;
  if (parts.length === 1) return { pattern, schema: null, table: anchored(parts[0]!) };
  // database.schema.table: the database part must be the one connected to; pg_dump checks that, tykdr ignores it.
  return { pattern, schema: anchored(parts[parts.length - 2]!), table: anchored(parts[parts.length - 1]!) };
}

/** A pg_dump pattern matching exactly one table: both parts quoted, so nothing in the names is a wildcard. */
export function exactTablePattern(schema: string, table: string): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${q(schema)}.${q(table)}`;
}
