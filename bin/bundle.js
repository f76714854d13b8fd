// Bundles the compiled CLI (dist/) with its libraries into dist/bundle/ (esbuild, code-split ESM): one
// chunk per command plus shared chunks, so a command loads a handful of files instead of hundreds of
// modules (oclif, zod, yaml, ioredis) resolved and read one by one. Start-up is part of every restore's RTO.
// `npm run build` runs it after tsc; bin/run.js uses the bundle only while it is newer than every file of
// dist/ it was made from (a later `tsc` makes it stale, and the plain dist/ modules run instead).
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const out = path.join(dist, 'bundle');
const tmp = `${out}.${process.pid}.tmp`;

function jsFiles(dir, acc = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) jsFiles(p, acc);
    else if (e.name.endsWith('.js')) acc.push(p);
  }
  return acc;
}

/**
 * zod re-exports every locale it ships (z.locales: 290 KB of the 570 KB zod adds to every command) from
 * v4/locales/index.js, which no tree-shaking can drop from a namespace. tykdr's messages are English (zod's
 * default, which zod sets from locales/en.js itself): the index is bundled with English only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: "export { default as en } from './en.js';\n",
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};

const { build } = await import('esbuild');
rmSync(tmp, { recursive: true, force: true });
await build({
  entryPoints: [...jsFiles(path.join(dist, 'commands')), path.join(dist, 'cli', 'oclif-entry.js')],
  outdir: tmp,
  outbase: dist,
  entryNames: '[dir]/[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native addons stay in node_modules; everything else is bundled.
  external: ['zstd-napi'],
  // Smaller files parse faster; identifiers are kept, so stack traces still name tykdr's functions.
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS libraries inside an ES module bundle still call require() for node's built-ins.
  plugins: [zodEnglishOnly],
  banner: { js: "import { createRequire as __tykdrRequire } from 'node:module'; const require = __tykdrRequire(import.meta.url);" },
});
// The stamp is written last (bin/run.js trusts a bundle only with one newer than dist/commands), then the new
// bundle replaces the old one in a rename, so a CLI starting meanwhile sees one whole bundle or none.
writeFileSync(path.join(tmp, 'STAMP'), `${new Date().toISOString()}\n`);
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
