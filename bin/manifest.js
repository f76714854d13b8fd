'use strict';
// The oclif command manifest (oclif.manifest.json): with it, oclif imports only the command being run;
// without it, every command module (and every driver they import) is loaded to list the commands' flags.
// It is generated from dist/, never committed: `npm run build` writes it, and bin/run.js drops a manifest
// older than dist/commands (a later `tsc` run) so oclif never reads stale flags, then writes a fresh one.
// CommonJS, as bin/run.js that requires it (bin/package.json).
const { readdirSync, renameSync, statSync, unlinkSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
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

/** Modification time of a file, or -1 when it is missing. */
function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * True when dist/bundle/ (bin/bundle.js) was made from the current dist/: tsc rewrites every file it emits,
 * so a bundle older than dist/commands is stale. `newest` is newestCommand(), computed once by the caller.
 */
function bundleIsFresh(newest = newestCommand()) {
  return newest > 0 && mtime(path.join(root, 'dist', 'bundle', 'STAMP')) >= newest;
}

/** True when oclif.manifest.json exists and is not older than dist/commands; a stale one is removed. */
function manifestIsFresh(newest = newestCommand()) {
  const at = mtime(manifestFile);
  if (at < 0) return false;
  if (at >= newest) return true;
  try {
    unlinkSync(manifestFile);
  } catch {
    // another process removed or replaced it
  }
  return false;
}

/**
 * Points the loaded manifest's commands at one layout: dist/commands (tsc's files) or dist/bundle/commands. oclif
 * imports a command from the manifest's relativePath, so the same manifest serves both layouts this way.
 */
function useCommandsDir(config, dir) {
  for (const cmd of Object.values(config.rootPlugin.manifest?.commands ?? {})) {
    const at = cmd.relativePath?.indexOf('commands') ?? -1;
    if (at >= 0) cmd.relativePath = [...dir.split('/'), ...cmd.relativePath.slice(at + 1)];
  }
}

/** Writes the manifest of a loaded oclif Config (atomically; a read-only install is left without one), for dist/commands. */
function writeManifest(config) {
  const tmp = `${manifestFile}.${process.pid}.tmp`;
  try {
    useCommandsDir(config, 'dist/commands');
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

/**
 * Runs `load` (oclif's Config.load) with String.prototype.localeCompare answering for command ids without the collator.
 * oclif's Plugin.load sorts the commands by id with localeCompare, and its first call loads ICU's collator: 8-9 ms of
 * every command's start-up on this project's machine, for the only locale comparison before a backup's first byte. Ids
 * of lowercase letters, ':' and '-' sort the same by code unit as by the root (and English) collation: punctuation
 * before letters, '-' before ':', and a prefix first. The commands are so listed in that order whatever the user's locale
 * (a locale that ignores punctuation, as Thai's, would have sorted "snapshots" before "snapshot:show"). Any other
 * comparison, or one with locales or options, goes to the collator. Restored once `load` settles.
 */
async function withoutCollator(load) {
  const localeCompare = String.prototype.localeCompare;
  String.prototype.localeCompare = function (that, ...rest) {
    const a = String(this);
    if (rest.length === 0 && typeof that === 'string' && PLAIN_ID.test(a) && PLAIN_ID.test(that)) return a < that ? -1 : a > that ? 1 : 0;
    return localeCompare.call(this, that, ...rest);
  };
  try {
    return await load();
  } finally {
    String.prototype.localeCompare = localeCompare;
  }
}

const PLAIN_ID = /^[a-z:-]*$/;

/**
 * Runs a CommonJS script's async `main` to its end. A failure outside oclif's handler (an unreadable package.json) is
 * printed and exits 1, as an uncaught error does. A `main` that never settles while nothing is left to wait for (a
 * promise no event will resolve: a bug) exits 13, as an ES module's unsettled top-level await does, and never 0: a
 * scheduler must not take it for a finished backup.
 */
function runMain(main) {
  let settled = false;
  process.on('beforeExit', () => {
    if (settled) return;
    process.exitCode = 13;
    console.error('tykdr: the command stopped before it finished, with nothing left to wait for (a bug: please report it with --debug output)');
  });
  main()
    .catch((err) => {
      process.exitCode = 1;
      console.error(err);
    })
    .finally(() => {
      settled = true;
    });
}

module.exports = { root, newestCommand, bundleIsFresh, manifestIsFresh, useCommandsDir, writeManifest, withoutCollator, runMain };

// `node bin/manifest.js` (npm run build): write it now.
if (require.main === module) {
  try {
    unlinkSync(manifestFile);
  } catch {
    // none yet
  }
  runMain(async () => {
    const { Config } = await import('@oclif/core');
    writeManifest(await Config.load(root));
  });
}
