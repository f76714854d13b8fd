'use strict';
// Runs dist/bundle/cli.cjs (bin/bundle.js) through vm.Script with a V8 code cache kept in a per-user folder. Node 20
// compiles every ES module from source on every start (it has no module.enableCompileCache); with the cache a command
// starts from the bytecode of the functions the same command ran the last time. Start-up is part of every restore's RTO.
//
// Safety: a cache file's name holds a SHA-256 of the node version, the architecture and the bundle's whole text, so a
// rebuilt or edited bundle never meets bytecode made from another text (V8 itself checks only the text's length); V8
// rejects a cache made by another V8 or with other flags, and the bundle then runs from its source. The folder must be
// the user's own and writable by no one else (bytecode there is code that runs); a missing, foreign or unwritable
// folder only means no cache: the caller runs the ES module bundle instead, and nothing fails.
const { isAscii } = require('node:buffer');
const { createHash } = require('node:crypto');
const { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { homedir } = require('node:os');
const path = require('node:path');
const vm = require('node:vm');

/** The per-user cache folder: TYKDR_CACHE_DIR, else $XDG_CACHE_HOME/tykdr, else ~/.cache/tykdr. */
function cacheDir(env = process.env) {
  if (env.TYKDR_CACHE_DIR) return path.resolve(env.TYKDR_CACHE_DIR);
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(base, 'tykdr');
}

/** The folder when it is (made) a directory of this user's that no one else may write to; else undefined. */
function usableDir(dir) {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * Loads the CommonJS bundle with the code cache and returns its exports ({ Config, run, flush, handle, commands }), or
 * undefined when the cache cannot be used here (TYKDR_CODE_CACHE=0, no usable folder, node without the vm loader option
 * the bundle's few dynamic import()s need). `name` picks the cache file (the command's first word): each command keeps
 * the bytecode of its own path. A cache made from a run is written at exit (see the two files below).
 */
function loadCachedBundle(root, name) {
  const importLoader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (process.env.TYKDR_CODE_CACHE === '0' || importLoader === undefined) return undefined;
  const dir = usableDir(cacheDir());
  if (!dir) return undefined;
  const file = path.join(root, 'dist', 'bundle', 'cli.cjs');
  const slug = /^[a-z][a-z0-9-]{0,40}$/.test(name ?? '') ? name : 'other';
  const script = compileCached(file, dir, slug);
  if (!script) return undefined;

  // oclif loads a command with require(<root>/dist/bundle/commands/<id>.cjs) (see useBundledCommands): answered here
  // from the bundle's own `commands`; every other require is node's.
  const commandsDir = path.join(root, 'dist', 'bundle', 'commands') + path.sep;
  const nodeRequire = createRequire(file);
  const mod = { exports: {} };
  // Bundled alone (bin/bundle.js) and required only by the code that uses them, each with a cache of its own, so the
  // commands that never use them do not carry them: dist/bundle/s3-sdk.cjs (the AWS SDK's S3 client: the S3 store) and
  // dist/bundle/mongodb.cjs (the MongoDB driver: the MongoDB source and target).
  const alone = new Map(['s3-sdk', 'mongodb'].map((n) => [path.join(root, 'dist', 'bundle', `${n}.cjs`), n]));
  const aloneExports = new Map();
  const bundleRequire = (id) => {
    if (typeof id === 'string' && id.startsWith(commandsDir) && id.endsWith('.cjs')) {
      const load = mod.exports.commands?.[id.slice(commandsDir.length, -4).split(path.sep).join(':')];
      if (load) return load();
    }
    const aloneName = alone.get(id);
    if (aloneName !== undefined) {
      if (!aloneExports.has(id)) {
        const own = compileCached(id, dir, `${slug}-${aloneName}`);
        const m = { exports: {} };
        if (own) own.runInThisContext()(m.exports, nodeRequire, m, id, path.dirname(id));
        aloneExports.set(id, own ? m.exports : nodeRequire(id));
      }
      return aloneExports.get(id);
    }
    return nodeRequire(id);
  };
  Object.assign(bundleRequire, { resolve: nodeRequire.resolve, cache: nodeRequire.cache, main: nodeRequire.main });
  script.runInThisContext()(mod.exports, bundleRequire, mod, file, path.dirname(file));
  return mod.exports;
}

/**
 * True when the command that ran says it did its whole work (src/cli/base-command.ts sets this when run() returned and
 * the run was not a dry run). Help (`tykdr backup --help`, often a command's first run; a topic alone), a dry run and a
 * failure compile only part of the command's path.
 */
function wholeRun() {
  return globalThis[Symbol.for('tykdr.code-cache.whole-run')] === true;
}

/**
 * A vm.Script of a CommonJS file (wrapped as node wraps one) with its code cache from `dir`, or undefined when the
 * file cannot be read. The cache is written at exit: two files a `slug`, the bytecode of a run that did its command's
 * whole work and exited 0 (.bin), and of one that did not (.partial.bin: it failed early, printed help, or was a dry
 * run, and compiled only part of the path). A partial run's cache is used until a whole run replaces it; a whole run's
 * is kept (a cache made from a help run kept for good cost every later backup 24 ms of start-up: bench/README.md).
 */
function compileCached(file, dir, slug) {
  const importLoader = vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  const key = createHash('sha256').update(`${process.version}\0${process.arch}\0`).update(bytes).digest('hex').slice(0, 40);
  // bin/bundle.js writes ASCII only: Latin-1 is then the same text, without decoding UTF-8.
  const src = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  bytes = undefined;
  const okFile = path.join(dir, `v8-${slug}-${key}.bin`);
  const partialFile = path.join(dir, `v8-${slug}-${key}.partial.bin`);
  let cachedData;
  let from;
  for (const f of [okFile, partialFile]) {
    try {
      cachedData = readFileSync(f);
      from = f;
      break;
    } catch {
      // none yet
    }
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${src}\n})`, {
    filename: file,
    cachedData,
    importModuleDynamically: importLoader,
  });
  const usable = cachedData !== undefined && !script.cachedDataRejected;
  const keep = !(usable && from === okFile);
  // V8 drops the bytecode of functions that have not run for a while (at its full collections), so at the exit of a
  // long run the start-up path may be gone: a 1,000,000-key backup that waited Redis's default 5 s before the transfer
  // left 942 KB of its 1,524 KB, and every later backup then started 61 ms slower. The bytecode is also taken once while
  // the run is young (EARLY_MS in: start-up done, nothing flushed yet), and at exit the larger of the two is written.
  // (--no-flush-bytecode would keep it all, but a V8 flag changed at run time costs every run 17 ms: node's own
  // modules' code cache no longer matches.) Only a run without a usable cache of a whole run takes them (~20 ms each):
  // the first run of a command after a build, and runs that only had a partial cache.
  let early;
  if (keep) {
    setTimeout(() => {
      try {
        early = script.createCachedData();
      } catch {
        // none then: the exit's
      }
    }, EARLY_MS).unref();
  }
  // The larger is the one that saves more compiling; a long run that compiled more late code than it lost keeps the
  // exit's (its start-up path then partly missing), a fair trade.
  const bytecode = () => {
    let last;
    try {
      last = script.createCachedData();
    } catch (err) {
      if (early !== undefined) return early;
      throw err;
    }
    return early !== undefined && early.length > last.length ? early : last;
  };
  process.once('exit', (code) => {
    if (code === 0 && wholeRun()) {
      if (keep) writeCache(bytecode, dir, slug, okFile);
    } else if (!usable) {
      writeCache(bytecode, dir, slug, partialFile);
    }
  });
  return script;
}

/** When a run that will write a cache takes its young bytecode (compileCached): after start-up, before any flush. */
const EARLY_MS = 1000;

/** Points the manifest's commands at the names loadCachedBundle answers (oclif then requires them). */
function useBundledCommands(config) {
  for (const cmd of Object.values(config.rootPlugin.manifest?.commands ?? {})) {
    const at = cmd.relativePath?.indexOf('commands') ?? -1;
    if (at < 0) continue;
    const rest = cmd.relativePath.slice(at + 1);
    rest[rest.length - 1] = rest[rest.length - 1].replace(/\.js$/, '.cjs');
    cmd.relativePath = ['dist', 'bundle', 'commands', ...rest];
    cmd.isESM = false;
  }
}

/** Writes the bytecode this run compiled (atomically; any failure is ignored) and drops the command's older caches. */
function writeCache(bytecode, dir, slug, cacheFile) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytecode(), { mode: 0o600 });
    renameSync(tmp, cacheFile);
    for (const f of readdirSync(dir)) {
      // (.failed.bin: what an earlier tykdr named a partial run's cache.)
      if (/^[0-9a-f]{40}(\.partial|\.failed)?\.bin$/.test(f.slice(`v8-${slug}-`.length)) && f.startsWith(`v8-${slug}-`) && path.join(dir, f) !== cacheFile) {
        unlinkSync(path.join(dir, f));
      }
    }
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
  }
}

module.exports = { cacheDir, loadCachedBundle, useBundledCommands };
