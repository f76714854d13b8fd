import { readFileSync } from 'node:fs';

/** The tool version, read from package.json once. */
export const TOOL_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
