import path from 'node:path';

/** Where a config-tarball entry lands: under `to` when given, else at its original absolute path. */
export function destinationOf(name: string, to: string | undefined): string {
  return to === undefined ? path.join('/', name) : path.join(to, name);
}
