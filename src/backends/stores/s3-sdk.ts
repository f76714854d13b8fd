import { createRequire } from 'node:module';
import type { S3SdkName } from './s3-sdk-names.js';

/**
 * The AWS SDK's S3 client (@aws-sdk/client-s3), loaded with require. For node the package is CommonJS (its ES
 * module build is reached only by bundlers: bin/bundle.js uses it); an ESM `import` of it first has node scan its
 * whole index file for export names (cjs-module-lexer) and resolve it again as ESM: 0.17-0.20 CPU-s against 0.08
 * through require, measured on the project machine with `node -e` (node 20). Only the S3 store loads this module,
 * and only when a store of kind s3 is used (registry.ts imports s3-store.ts on first use). Types come from
 * `import type` of the package as usual; `sdk` has the names of s3-sdk-names.ts only, which are all the bundle's
 * s3-sdk.cjs carries.
 */
export const sdk: Pick<typeof import('@aws-sdk/client-s3'), S3SdkName> = createRequire(import.meta.url)('@aws-sdk/client-s3');
