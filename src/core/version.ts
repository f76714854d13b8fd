import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './util/package-root.js';

/** The tool version, read from package.json once. */
export const TOOL_VERSION: string = (
  JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
