'use strict';
// Bundles the compiled CLI (dist/) with its libraries into dist/bundle/ (esbuild, code-split ESM): one
// chunk per command plus shared chunks, so a command loads a handful of files instead of hundreds of
// modules (oclif, zod, yaml, ioredis) resolved and read one by one. Start-up is part of every restore's RTO.
// `npm run build` runs it after tsc; bin/run.js uses the bundle only while it is newer than every file of
// dist/ it was made from (a later `tsc` makes it stale, and the plain dist/ modules run instead).
const { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { isBuiltin } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const root = path.resolve(__dirname, '..');
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

/**
 * In cli.cjs only: src/backends/stores/s3-sdk.ts loads the AWS SDK's S3 client with a createRequire esbuild leaves to
 * node, which then reads its few hundred files one by one on every S3 command. There it requires
 * dist/bundle/s3-sdk.cjs (the client bundled alone, below), which bin/code-cache.js runs with a code cache of its own.
 */
const s3SdkBundled = {
  name: 's3-sdk-bundled',
  setup(b) {
    b.onLoad({ filter: /[\\/]backends[\\/]stores[\\/]s3-sdk\.js$/ }, () => ({
      contents: "export const sdk = require(require('node:path').join(__dirname, 's3-sdk.cjs'));\n",
      loader: 'js',
    }));
  },
};

/**
 * In cli.cjs only, the same for the MongoDB driver: src/backends/mongo/driver.ts requires `mongodb` on first use; there it
 * requires dist/bundle/mongodb.cjs (the driver and its BSON and URL libraries bundled alone, below: about 1 MB that
 * the commands of a Redis-only setup no longer read, hash and deserialize at every start).
 */
const mongoDriverBundled = {
  name: 'mongo-driver-bundled',
  setup(b) {
    b.onLoad({ filter: /[\\/]backends[\\/]mongo[\\/]driver\.js$/ }, () => ({
      contents: "let driver;\nexport function mongoDriver() {\n  return (driver ??= require(require('node:path').join(__dirname, 'mongodb.cjs')));\n}\n",
      loader: 'js',
    }));
  },
};

/** cli.cjs, s3-sdk.cjs and mongodb.cjs: built-in import()s made requires, and ASCII only (see below). */
function postProcess(file) {
  writeFileSync(
    file,
    readFileSync(file, 'utf8')
      .replace(/\bimport\("((?:node:)?[a-z_/]+)"\)/g, (m, id) => (isBuiltin(id) ? `Promise.resolve().then(() => require("${id}"))` : m))
      .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
}

// CommonJS, as the rest of bin/ (bin/package.json).
async function main() {
  const { build } = await import('esbuild');
  rmSync(tmp, { recursive: true, force: true });
  // What every bundle shares: node 20, minified syntax and whitespace (smaller files parse faster; identifiers are kept, so
  // stack traces still name tykdr's functions), native addons left in node_modules.
  const common = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    external: ['zstd-napi'],
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
  };
  await build({
    ...common,
    entryPoints: [...jsFiles(path.join(dist, 'commands')), path.join(dist, 'cli', 'oclif-entry.js')],
    outdir: tmp,
    outbase: dist,
    entryNames: '[dir]/[name]',
    splitting: true,
    format: 'esm',
    // CommonJS libraries inside an ES module bundle still call require() for node's built-ins.
    plugins: [zodEnglishOnly],
    banner: { js: "import { createRequire as __tykdrRequire } from 'node:module'; const require = __tykdrRequire(import.meta.url);" },
  });
  // The same code again as one CommonJS file (cli.cjs) for bin/code-cache.js, which compiles it with vm.Script and a V8
  // code cache: node 20 has no compile cache for ES modules, and compiling the chunks was ~60 ms of every command's
  // start-up. Commands are entries of `commands`, each required (run) only when oclif asks for it.
  const commandIds = jsFiles(path.join(dist, 'commands')).map((f) => path.relative(path.join(dist, 'commands'), f).slice(0, -3).split(path.sep));
  await build({
    ...common,
    stdin: {
      contents: [
        "export { Config, run, flush, handle } from './cli/oclif-entry.js';",
        'export const commands = {',
        ...commandIds.map((id) => `  ${JSON.stringify(id.join(':'))}: () => require(${JSON.stringify(`./commands/${id.join('/')}.js`)}),`),
        '};',
      ].join('\n'),
      resolveDir: dist,
      sourcefile: 'cli-entry.js',
      loader: 'js',
    },
    outfile: path.join(tmp, 'cli.cjs'),
    format: 'cjs',
    plugins: [zodEnglishOnly, s3SdkBundled, mongoDriverBundled],
    // import.meta.url (the install root is found from it) as the ES module's would be: this file's URL.
    define: { 'import.meta.url': '__tykdrImportMetaUrl' },
    banner: { js: "var __tykdrImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  // A literal import() of a node built-in (the MongoDB driver's import("os"), now in mongodb.cjs) becomes a require: in vm.Script an import()
  // goes through an experimental loader option that prints a warning when used. And the files are kept ASCII (esbuild
  // leaves a few characters in regular expressions as they are): bin/code-cache.js then reads them as Latin-1, several
  // times faster than decoding UTF-8 into a two-byte string.
  postProcess(path.join(tmp, 'cli.cjs'));
  // Only the names tykdr uses (s3-sdk-names.ts), from the SDK's ES module build ("module"), which esbuild can tree-shake:
  // the CommonJS build is one file with every command in it.
  const { S3_SDK_NAMES } = await import(pathToFileURL(path.join(dist, 'backends', 'stores', 's3-sdk-names.js')).href);
  await build({
    ...common,
    stdin: { contents: `export { ${S3_SDK_NAMES.join(', ')} } from '@aws-sdk/client-s3';\n`, resolveDir: root, sourcefile: 's3-sdk-entry.js', loader: 'js' },
    mainFields: ['module', 'main'],
    outfile: path.join(tmp, 's3-sdk.cjs'),
    format: 'cjs',
  });
  postProcess(path.join(tmp, 's3-sdk.cjs'));
  // The MongoDB driver alone (see mongoDriverBundled).
  await build({
    ...common,
    stdin: { contents: "module.exports = require('mongodb');\n", resolveDir: root, sourcefile: 'mongodb-entry.js', loader: 'js' },
    outfile: path.join(tmp, 'mongodb.cjs'),
    format: 'cjs',
  });
  postProcess(path.join(tmp, 'mongodb.cjs'));
  // The stamp is written last (bin/run.js trusts a bundle only with one newer than dist/commands), then the new
  // bundle replaces the old one in a rename, so a CLI starting meanwhile sees one whole bundle or none.
  writeFileSync(path.join(tmp, 'STAMP'), `${new Date().toISOString()}\n`);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
}

require('./manifest.js').runMain(main);
