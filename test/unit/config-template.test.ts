import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config/load.js';
import { configTemplate } from '../../src/core/config/template.js';

/**
 * Every commented example in the `tykdr init` template must load once uncommented, as a user would
 * uncomment it: one example block at a time (a commented `key:` line and the more indented commented
 * lines under it), with the examples nested inside it uncommented too. An example offered instead of an
 * active section ("...or an S3 bucket") replaces it.
 */

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const ENV = {
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'example-secret',
  TYK_REDIS_PASSWORD: 'example-redis-password',
  TYK_PG_PASSWORD: 'example-pg-password',
  TYK_MONGO_URI: 'mongodb://tyk:example@127.0.0.1:27017/',
  TYK_CANARY_KEY: 'example-canary-key',
  HOOK_TOKEN: 'example-hook-token',
  TYKDR_PASSPHRASE: 'example passphrase',
};
/** Examples the template offers instead of an active sibling (its comment says "instead of ... (not both)"). */
const REPLACES: Record<string, string> = { passphrase: 'recipients' };

const COMMENTED = /^(\s*)# ?(.*)$/;
const YAML_LINE = /^(\s*)([A-Za-z][\w-]*:(\s|$)|- )/;

interface Block {
  start: number;
  end: number; // exclusive
  key: string;
  indent: string;
}

/** Commented example blocks: a commented `key:` line and the commented lines indented deeper under it. */
function exampleBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = COMMENTED.exec(lines[i]!);
    if (!m || !/^[A-Za-z][\w-]*:(\s|$)/.test(m[2]!)) continue;
    const depth = m[1]!.length;
    let end = i + 1;
    for (; end < lines.length; end++) {
      const n = COMMENTED.exec(lines[end]!);
      if (!n || n[1]!.length !== depth || !/^\s+\S/.test(n[2]!)) break;
    }
    blocks.push({ start: i, end, key: m[2]!.split(':')[0]!, indent: m[1]! });
    i = end - 1;
  }
  return blocks;
}

/** Removes one level of "# " from each line; nested commented YAML lines lose theirs too. */
function uncomment(lines: string[], b: Block): string[] {
  return lines.slice(b.start, b.end).map((l) => {
    let out = l.replace(/^(\s*)# ?/, '$1');
    const nested = COMMENTED.exec(out);
    if (nested && YAML_LINE.test(nested[2]!)) out = `${nested[1]}${nested[2]}`;
    return out;
  });
}

/** The active (uncommented) section `key:` at `indent` in lines, as [start, end). */
function activeSection(lines: string[], key: string, indent: string): [number, number] | undefined {
  const start = lines.findIndex((l) => l.startsWith(`${indent}${key}:`));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && (lines[end]!.startsWith(`${indent} `) || lines[end]!.trim() === '')) end++;
  return [start, end];
}

function withExample(template: string, b: Block): string {
  const lines = template.split('\n');
  const replaced = [...lines.slice(0, b.start), ...uncomment(lines, b), ...lines.slice(b.end)];
  for (const key of [b.key, REPLACES[b.key]].filter((k): k is string => k !== undefined)) {
    // The example is an alternative to an active section of the same (or the named) key: that one goes.
    const at = activeSection(replaced, key, b.indent);
    if (at && at[0] !== b.start) replaced.splice(at[0], at[1] - at[0]);
  }
  return replaced.join('\n');
}

describe('the init template', () => {
  const template = configTemplate({ recipient: RECIPIENT });
  const blocks = exampleBlocks(template.split('\n'));

  it('has the commented examples this test walks through', () => {
    const keys = blocks.map((b) => b.key);
    for (const k of ['store', 'tiers', 'password', 'sentinel', 'dashboard-db', 'gateway', 'dashboard', 'signing', 'schedule', 'notifications', 'passphrase']) {
      expect(keys).toContain(k);
    }
  });

  it.each(exampleBlocks(configTemplate({ recipient: RECIPIENT }).split('\n')).map((b) => [`${b.key} (line ${b.start + 1})`, b] as const))(
    'uncommenting %s gives a config that loads',
    (_name, b) => {
      const text = withExample(template, b);
      expect(() => parseConfig(text, '/etc/tykdr/tykdr.yaml', ENV), text.split('\n').slice(Math.max(0, b.start - 2), b.end + 2).join('\n')).not.toThrow();
    },
  );

  it('the keyProbe example keeps its ${VAR} a string once uncommented (flow-mapping braces need quotes)', () => {
    const b = blocks.find((x) => x.key === 'gateway')!;
    const c = parseConfig(withExample(template, b), '/etc/tykdr/tykdr.yaml', ENV);
    expect(c.gateway?.keyProbe?.key.reveal()).toBe('example-canary-key');
  });

  it('an unquoted ${VAR} inside { } is a YAML error whose fix says to quote it', () => {
    const text = withExample(template, blocks.find((x) => x.key === 'gateway')!).replace('key: "${TYK_CANARY_KEY}"', 'key: ${TYK_CANARY_KEY}');
    let err: unknown;
    try {
      parseConfig(text, '/etc/tykdr/tykdr.yaml', ENV);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/tykdr\.yaml, line \d+: YAML syntax error/);
    expect((err as { fix?: string }).fix).toContain('put ${VAR} references in quotes');
  });
});
