// The oclif command manifest (oclif.manifest.json): with it, oclif imports only the command being run;
// without it, every command module (and every driver they import) is loaded to list the commands' flags.
// It is generated from dist/, never committed: `npm run build` writes it, and bin/run.js drops a manifest
// older than dist/commands (a later `tsc` run) so oclif never reads stale flags, then writes a fresh one.
import { readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifestFile = path.join(root, 'oclif.manifest.json');

/** Newest modification time of the compiled commands (0 when dist/commands is missing). */
function newestCommand(dir = path.join(root, 'dist', 'commands')) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestCommand(p));
    else if (e.name.endsWith('.js')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** True when oclif.manifest.json exists and is not older than dist/commands; a stale one is removed. */
export function manifestIsFresh() {
  let at;
  try {
    at = statSync(manifestFile).mtimeMs;
  } catch {
    return false;
  }
  if (at >= newestCommand()) return true;
  try {
    unlinkSync(manifestFile);
  } catch {
    // another process removed or replaced it
  }
  return false;
}

/** Writes the manifest of a loaded oclif Config (atomically; a read-only install is left without one). */
export function writeManifest(config) {
  const tmp = `${manifestFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(config.rootPlugin.manifest));
    renameSync(tmp, manifestFile);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
  }
}

// `node bin/manifest.js` (npm run build): write it now.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    unlinkSync(manifestFile);
  } catch {
    // none yet
  }
  const { Config } = await import('@oclif/core');
  writeManifest(await Config.load(root));
}
