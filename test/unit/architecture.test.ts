import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  checkImports,
  checkRule,
  elementaryCycles,
  extractImports,
  findingKeys,
  formatReport,
  matchPattern,
  RULES,
  type CheckOptions,
} from '../../scripts/check-imports.js';
import { useCleanups } from '../helpers/cleanups.js';
import { repoRoot } from '../helpers/paths.js';

const { tempDir } = useCleanups();

/** Writes files (paths relative to the tree root, e.g. 'src/a.ts') into a fresh temporary folder. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await tempDir('tykdr-arch-');
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(root, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  return root;
}

async function findings(files: Record<string, string>, options?: CheckOptions): Promise<string[]> {
  return findingKeys(checkImports(await tree(files), options));
}

describe('architecture of src/', () => {
  const report = checkImports(repoRoot);
  const found = findingKeys(report);

  it('sees the source tree', () => {
    expect(report.files).toBeGreaterThan(100);
    expect(report.imports).toBeGreaterThan(400);
  });

  it('has no import cycle (type-only imports included) and no layer violation', () => {
    expect(found, `fix these (npx tsx scripts/check-imports.ts shows the details and the rules):\n${found.join('\n')}`).toEqual([]);
  });

  it('every relative import resolves to a file', () => {
    expect(report.unresolved).toEqual([]);
  });
});

describe('the import scanner', () => {
  const specs = (src: string) => extractImports(src).imports.map((i) => `${i.kind}${i.typeOnly ? ' type' : ''} ${i.specifier}`);

  it('reads every form of import and re-export', () => {
    const src = [
      "import a from './a.js';",
      "import * as b from './b.js';",
      "import c, { d as e, f } from './c.js';",
      "import './side-effect.js';",
      'import {',
      '  g,',
      '  h,',
      "} from './multi-line.js';",
      "export * from './star.js';",
      "export * as ns from './star-ns.js';",
      "export { x, y as z } from './named.js';",
      "const m = await import('./dynamic.js');",
      "const n = () => import(`./template.js`).then((mod) => mod.n);",
      "import q = require('./required.js');",
      "import { readFile } from 'node:fs/promises';",
    ].join('\n');
    expect(specs(src)).toEqual([
      'import ./a.js',
      'import ./b.js',
      'import ./c.js',
      'import ./side-effect.js',
      'import ./multi-line.js',
      'export ./star.js',
      'export ./star-ns.js',
      'export ./named.js',
      'dynamic ./dynamic.js',
      'dynamic ./template.js',
      'require ./required.js',
      'import node:fs/promises',
    ]);
  });

  it('tells type-only imports apart', () => {
    const src = [
      "import type { A } from './t1.js';",
      "import type B from './t2.js';",
      "import { type C, type D } from './t3.js';",
      "import { type E, F } from './value1.js';",
      "import type, { G } from './value2.js';",
      "export type { H } from './t4.js';",
      "export { type I } from './t5.js';",
      "type J = typeof import('./t6.js');",
      "let k: import('./t7.js').K;",
      "const l = import('./value3.js').then((m) => m.l);",
    ].join('\n');
    expect(specs(src)).toEqual([
      'import type ./t1.js',
      'import type ./t2.js',
      'import type ./t3.js',
      'import ./value1.js',
      'import ./value2.js',
      'export type ./t4.js',
      'export type ./t5.js',
      'dynamic type ./t6.js',
      'dynamic type ./t7.js',
      'dynamic ./value3.js',
    ]);
  });

  it('ignores comments, strings, templates, regular expressions and import.meta', () => {
    const src = [
      "// import { a } from './comment.js';",
      "/* import('./block-comment.js') */",
      "const s = \"import x from './string.js'\";",
      "const t = `import('./template.js') ${'/'} export * from './x.js'`;",
      "const re = /import '\\/x'/g; const q = /[\"'`]/;",
      'const u = new URL(import.meta.url);',
      "const o = { import: (x: string) => x }; o.import('./property.js');",
      "import { real } from './real.js';",
      "const d = (a) / (b) / c; const e = a++ / 2; export { after } from './after-division.js';",
    ].join('\n');
    expect(specs(src)).toEqual(['import ./real.js', 'export ./after-division.js']);
    expect(extractImports(src).imports.map((i) => i.line)).toEqual([8, 9]);
  });

  it('reports dynamic imports of a computed path, which it cannot follow', () => {
    const { imports, opaque } = extractImports("const name = './x.js';\nawait import(name);\nclass K { import(x: string) { return x; } }\n");
    expect(imports).toEqual([]);
    expect(opaque).toEqual([{ line: 2, text: 'await import(name);' }]);
  });
});

describe('cycles', () => {
  const graph = (edges: string[]) => {
    const g = new Map<string, Set<string>>();
    for (const e of edges) {
      const [a, b] = e.split('>') as [string, string];
      if (!g.has(a)) g.set(a, new Set());
      g.get(a)!.add(b);
    }
    return g;
  };

  it('lists every elementary cycle once, from its first node', () => {
    // every pair of a, b, c both ways: three 2-cycles and the two 3-cycles
    const { cycles } = elementaryCycles(graph(['a>b', 'b>a', 'b>c', 'c>b', 'a>c', 'c>a']));
    expect(cycles.map((c) => c.join(''))).toEqual(['aba', 'aca', 'bcb', 'abca', 'acba']);
    expect(elementaryCycles(graph(['a>a', 'a>b'])).cycles).toEqual([['a', 'a']]);
    expect(elementaryCycles(graph(['a>b', 'b>c', 'a>c'])).cycles).toEqual([]);
  });

  it('stops at maxCycles and says so', () => {
    const r = elementaryCycles(graph(['a>b', 'b>a', 'b>c', 'c>b', 'a>c', 'c>a']), 2);
    expect(r.cycles).toHaveLength(2);
    expect(r.truncated).toBe(true);
  });

  it('finds a 2-file cycle', async () => {
    expect(
      await findings({
        'src/core/a.ts': "import { b } from './b.js';\nexport const a = 1;",
        'src/core/b.ts': "import { a } from './a.js';\nexport const b = a;",
      }),
    ).toEqual(['cycle: src/core/a.ts -> src/core/b.ts -> src/core/a.ts']);
  });

  it('finds a 3-file cycle once, and not the files that merely import into it', async () => {
    expect(
      await findings({
        'src/core/x/a.ts': "import { b } from '../y/b.js';\nexport const a = 1;",
        'src/core/y/b.ts': "export { c } from '../c.js';",
        'src/core/c.ts': "import * as a from './x/a.js';\nexport const c = 2;",
        'src/core/d.ts': "import { a } from './x/a.js';\nimport { b } from './y/b.js';",
      }),
    ).toEqual(['cycle: src/core/c.ts -> src/core/x/a.ts -> src/core/y/b.ts -> src/core/c.ts']);
  });

  it('finds a cycle closed by a dynamic import', async () => {
    expect(
      await findings({
        'src/daemon/jobs.ts': "import { run } from './runner.js';\nexport const jobs = [run];",
        'src/daemon/runner.ts': "export async function run() { return (await import('./jobs.js')).jobs; }",
      }),
    ).toEqual(['cycle: src/daemon/jobs.ts -> src/daemon/runner.ts -> src/daemon/jobs.ts']);
  });

  it('counts type-only cycles between files, unless told not to', async () => {
    const files = {
      'src/core/a.ts': "import type { B } from './b.js';\nexport interface A { b: B }",
      'src/core/b.ts': "import type { A } from './a.js';\nexport interface B { a: A }",
    };
    expect(await findings(files)).toEqual(['cycle: src/core/a.ts -> src/core/b.ts -> src/core/a.ts']);
    expect(await findings(files, { typesInFileCycles: false })).toEqual([]);
  });

  it('finds cycles between top-level folders that no file cycle shows, type imports included unless turned off', async () => {
    const files = {
      'src/daemon/service.ts': "import { load } from '../cli/config.js';\nexport const start = () => load();",
      'src/cli/config.ts': "import type { Log } from '../daemon/log.js';\nexport const load = (log?: Log) => log;",
      'src/daemon/log.ts': 'export type Log = (line: string) => void;',
    };
    expect(await findings(files)).toEqual(['folder cycle: src/cli -> src/daemon -> src/cli']);
    expect(await findings(files, { typesInFolderCycles: false })).toEqual([]);
    const report = checkImports(await tree(files));
    expect(report.folderCycles[0]!.hops).toEqual([
      { from: 'src/cli', to: 'src/daemon', imports: [{ file: 'src/cli/config.ts', line: 1, target: 'src/daemon/log.ts' }] },
      { from: 'src/daemon', to: 'src/cli', imports: [{ file: 'src/daemon/service.ts', line: 1, target: 'src/cli/config.ts' }] },
    ]);
  });
});

describe('layer rules', () => {
  it('matches folder patterns, with <captures>', () => {
    expect(matchPattern('src/core/**', 'src/core/a.ts')).toEqual({});
    expect(matchPattern('src/core/**', 'src/core/x/y/a.ts')).toEqual({});
    expect(matchPattern('src/core/**', 'src/corex/a.ts')).toBeNull();
    expect(matchPattern('src/backends/<kind>/**', 'src/backends/redis/source/a.ts')).toEqual({ kind: 'redis' });
    // `folder/*/**` means files inside a subfolder: src/backends/registry.ts is not in one
    expect(matchPattern('src/backends/*/**', 'src/backends/registry.ts')).toBeNull();
    expect(matchPattern('src/**/*.test.ts', 'src/a/b.test.ts')).toEqual({});
    expect(matchPattern('src/**/*.test.ts', 'src/b.test.ts')).toEqual({});
  });

  it('applies the declared rules', () => {
    const broken = (from: string, to: string) => RULES.filter((r) => checkRule(r, from, to)).map((r) => r.name);
    expect(broken('src/core/restore/steps.ts', 'src/backends/redis/target/restore.ts')).toEqual(['core-independent']);
    expect(broken('src/core/restore/steps.ts', 'src/verify/http-checks.ts')).toEqual(['core-independent']);
    expect(broken('src/core/a.ts', 'src/core/b/c.ts')).toEqual([]);
    expect(broken('src/verify/a.ts', 'src/core/errors.ts')).toEqual([]);
    expect(broken('src/verify/a.ts', 'src/verify/b.ts')).toEqual([]);
    expect(broken('src/verify/a.ts', 'src/backends/redis/client.ts')).toEqual(['verify-only-core']);
    expect(broken('src/verify/a.ts', 'src/cli/progress.ts')).toEqual(['verify-only-core']);
    expect(broken('src/backends/redis/a.ts', 'src/daemon/log.ts')).toEqual(['backends-below-entry-points']);
    expect(broken('src/backends/redis/target/a.ts', 'src/backends/redis/protocol/b.ts')).toEqual([]);
    expect(broken('src/backends/redis/a.ts', 'src/backends/postgres/b.ts')).toEqual(['backend-kinds-apart']);
    expect(broken('src/backends/mongo/a.ts', 'src/backends/stores/store.ts')).toEqual(['backend-kinds-apart']);
    expect(broken('src/backends/mongo/a.ts', 'src/backends/protocol/wire.ts')).toEqual([]);
    expect(broken('src/backends/registry.ts', 'src/backends/mongo/index.ts')).toEqual([]);
    expect(broken('src/commands/backup.ts', 'src/backends/registry.ts')).toEqual([]);
  });

  it('reports a layer violation with the importing line', async () => {
    const root = await tree({
      'src/core/backup.ts': "import { openStore } from '../backends/stores/registry.js';\nexport const backup = openStore;",
      'src/backends/stores/registry.ts': 'export const openStore = () => null;',
    });
    const report = checkImports(root);
    expect(findingKeys(report)).toEqual(['layer core-independent: src/core/backup.ts -> src/backends/stores/registry.ts']);
    expect(report.violations[0]).toMatchObject({ line: 1, kind: 'import', typeOnly: false });
    expect(formatReport(report)).toContain('src/core/backup.ts:1 -> src/backends/stores/registry.ts');
  });

  it('counts type-only imports for layers unless turned off, and takes its own rule table', async () => {
    const files = {
      'src/app/a.ts': "import type { T } from '../lib/t.js';\nexport const a = 1;",
      'src/lib/t.ts': 'export type T = number;',
    };
    const rules = [{ name: 'app-alone', files: 'src/app/**', deny: ['src/lib/**'] }];
    expect(await findings(files, { rules })).toEqual(['layer app-alone: src/app/a.ts -> src/lib/t.ts']);
    expect(await findings(files, { rules, typesInLayers: false })).toEqual([]);
    expect(() => checkImports(repoRoot, { rules: [{ name: 'x', files: 'src/**', deny: ['src/<kind>/**'] }] })).toThrow(/not captured/);
  });

  it('keeps backend kinds apart, except a shared protocol folder and the registry', async () => {
    expect(
      await findings({
        'src/backends/registry.ts': "import { r } from './redis/source.js';\nimport { p } from './postgres/source.js';",
        'src/backends/redis/source.ts': "import { wire } from '../protocol/wire.js';\nexport const r = wire;",
        'src/backends/postgres/source.ts': "import { r } from '../redis/source.js';\nexport const p = r;",
        'src/backends/protocol/wire.ts': 'export const wire = 1;',
      }),
    ).toEqual(['layer backend-kinds-apart: src/backends/postgres/source.ts -> src/backends/redis/source.ts']);
  });
});

describe('the check as a whole', () => {
  const clean = {
    'src/core/errors.ts': 'export class AppError extends Error {}',
    'src/core/config/load.ts': "import { AppError } from '../errors.js';\nexport const load = () => { throw new AppError(); };",
    'src/backends/registry.ts': "import { load } from '../core/config/load.js';\nexport const open = async () => (await import('./redis/index.js')).redis(load);",
    'src/backends/redis/index.ts': "import type { AppError } from '../../core/errors.js';\nexport const redis = (f: unknown): AppError | null => (f ? null : null);",
    'src/commands/backup.ts': "import { open } from '../backends/registry.js';\nimport '../core/config/load.js';\nexport default open;",
  };

  it('finds nothing in a clean tree', async () => {
    const report = checkImports(await tree(clean));
    expect(findingKeys(report)).toEqual([]);
    expect(report.files).toBe(5);
    expect(report.imports).toBe(6);
    expect(formatReport(report)).toMatch(/^architecture OK: 5 files, 6 relative imports in src\/; no import cycles/);
  });

  it('reports relative imports that resolve to nothing', async () => {
    expect(await findings({ 'src/core/a.ts': "import { b } from './b.js';\nimport x from './dir';\nexport * from 'pkg';", 'src/core/dir/index.ts': '' })).toEqual([
      'unresolved: src/core/a.ts -> ./b.js',
    ]);
  });

  const run = promisify(execFile);
  const script = path.join(repoRoot, 'scripts/check-imports.ts');
  const cli = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );

  it('CLI: exit 0 and one line when clean; exit 1 and a readable list otherwise; --json', async () => {
    const ok = await cli(['--root', await tree(clean)]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);

    const bad = await tree({
      ...clean,
      'src/core/errors.ts': "import '../commands/backup.js';\nexport class AppError extends Error {}",
    });
    const out = await cli(['--root', bad]);
    expect(out.code).toBe(1);
    // the third cycle runs through a type-only import of the fixture's redis/index.ts
    expect(out.stdout).toContain('File import cycles (3):');
    expect(out.stdout).toContain('\n  src/commands/backup.ts -> src/core/config/load.ts -> src/core/errors.ts -> src/commands/backup.ts\n');
    expect(out.stdout).toContain(
      '\n  src/backends/registry.ts -> src/core/config/load.ts -> src/core/errors.ts -> src/commands/backup.ts -> src/backends/registry.ts\n',
    );
    expect(out.stdout).toContain('\n  src/commands -> src/core -> src/commands\n');
    expect(out.stdout).toContain('Layer violations (1):');
    expect(out.stdout).toContain('src/core/errors.ts:1 -> src/commands/backup.ts');

    const json = await cli(['--root', bad, '--json']);
    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout) as { findings: string[] };
    expect(parsed.findings).toContain('layer core-independent: src/core/errors.ts -> src/commands/backup.ts');
  });
});
