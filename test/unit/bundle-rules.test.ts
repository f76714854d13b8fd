import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/paths.js';

async function sources(dir: string, acc: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await sources(p, acc);
    else if (e.name.endsWith('.ts')) acc.push(p);
  }
  return acc;
}

describe('code the bundle (bin/bundle.js) runs as node would', () => {
  it('loads no package with a dynamic import(): esbuild gives a CommonJS package loaded so only its default export', async () => {
    const found: string[] = [];
    for (const file of await sources(path.join(repoRoot, 'src'))) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        // import('pkg') at run time; `typeof import('pkg')` and `import('pkg').Type` in types are fine.
        for (const m of code.matchAll(/(typeof\s+)?\bimport\(\s*['"]([^'"]+)['"]\s*\)(\s*\.\s*[A-Z])?/g)) {
          if (m[1] || m[3] || m[2]!.startsWith('.')) continue;
          found.push(`${path.relative(repoRoot, file)}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    expect(found, 'import a local module that imports the package statically (e.g. src/backends/redis/protocol/ioredis-client.ts)').toEqual([]);
  });
});
