#!/usr/bin/env node
// tykdr supports Node 20; the AWS SDK warns about its own future Node policy on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { manifestIsFresh, root, writeManifest } from './manifest.js';

const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  // What oclif prints for --version, without loading oclif (start-up is part of every restore's RTO).
  const pjson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  process.stdout.write(`${pjson.oclif?.bin ?? pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  const fresh = manifestIsFresh();
  const { Config, run, flush, handle } = await import('@oclif/core');
  // As oclif's execute(): run, flush, and errors through oclif's handler (exit codes).
  try {
    const config = await Config.load(root);
    if (!fresh) writeManifest(config);
    await run(argv, config);
    await flush();
  } catch (err) {
    await handle(err);
  }
}
