import { createRequire } from 'node:module';
import type * as MongoDriver from 'mongodb';

/**
 * The MongoDB driver (the `mongodb` package), required on first use. With its BSON and URL libraries it was about 1 MB of
 * the 3.4 MB bundle (dist/bundle/cli.cjs) that every command reads, hashes and compiles from its code cache, Redis-only
 * ones included: a backup of 200 keys to a folder took 0.94x the CPU without it (bench/README.md, ninth session). In
 * the bundle, bin/bundle.js answers this module with dist/bundle/mongodb.cjs (the driver bundled alone), which
 * bin/code-cache.js runs with a code cache of its own. Types come from `import type` of the package as usual.
 */
let driver: typeof MongoDriver | undefined;

export function mongoDriver(): typeof MongoDriver {
  return (driver ??= createRequire(import.meta.url)('mongodb') as typeof MongoDriver);
}
