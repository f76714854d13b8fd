#!/usr/bin/env node
'use strict';
// CommonJS (bin/package.json): node starts a CommonJS entry 5-8 ms sooner than an ES module one, and start-up is part of
// every restore's RTO (bench/README.md, ninth session).
// tykdr supports Node 20; the AWS SDK warns about its own future Node policy on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The built CLI is what runs, whatever NODE_ENV says: with NODE_ENV=development or test (and the tsconfig.json of a
// clone) oclif would look for TypeScript sources and import tsx, and through the code-cache loader that import printed
// an ExperimentalWarning on the first run of a command.
globalThis.oclif = { ...globalThis.oclif, enableAutoTranspile: false };
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { bundleIsFresh, manifestIsFresh, newestCommand, root, runMain, useCommandsDir, withoutCollator, writeManifest } = require('./manifest.js');

async function main() {
  const argv = process.argv.slice(2);
  const pjson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  if (argv.length === 1 && argv[0] === '--version') {
    // What oclif prints for --version, without loading oclif (start-up is part of every restore's RTO).
    process.stdout.write(`${pjson.oclif?.bin ?? pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`);
    return;
  }
  const newest = newestCommand();
  const fresh = manifestIsFresh(newest);
  // The bundle (npm run build: bin/bundle.js) when it was made from this dist/, else dist/'s own modules.
  const bundled = process.env.TYKDR_NO_BUNDLE !== '1' && bundleIsFresh(newest);
  const commands = bundled ? 'dist/bundle/commands' : 'dist/commands';
  pjson.oclif.commands = `./${commands}`;
  // With a fresh manifest, the bundle's CommonJS twin through a V8 code cache (bin/code-cache.js) when a cache folder
  // can be used; else its ES modules.
  const codeCache = bundled && fresh ? require('./code-cache.js') : undefined;
  const cached = codeCache?.loadCachedBundle(root, argv[0]);
  const { Config, run, flush, handle } = cached ?? (bundled ? await import('../dist/bundle/cli/oclif-entry.js') : await import('@oclif/core'));
  // As oclif's execute(): run, flush, and errors through oclif's handler (exit codes).
  try {
    const config = await withoutCollator(() => Config.load({ root, pjson }));
    if (!fresh) writeManifest(config);
    if (cached) codeCache.useBundledCommands(config);
    else useCommandsDir(config, commands);
    await run(argv, config);
    await flush();
  } catch (err) {
    await handle(err);
  }
}

runMain(main);
