import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * tykdr's install root: the nearest folder above this module holding package.json. The same code runs
 * compiled file by file (dist/core/util/) and bundled into a few chunks (dist/bundle/), at different
 * depths, so paths to package.json, plans/ and .tools/ are found from here, never by counting "../".
 */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`tykdr: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export const PACKAGE_ROOT: string = findRoot();
