import { createRequire } from 'node:module';
import type * as ZstdNapi from 'zstd-napi';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { TykdrError } from './errors.js';

/*
 * zstd-napi, loaded on first use rather than with the modules that use it: its native addon and its eight small files
 * took 5.6-8.1 ms of every command's start-up (the addon alone 2.1-3.8 ms; `node -e` with process.hrtime), and a
 * backup first needs it once Redis sends the snapshot, after SYNC (bench/README.md, ninth session).
 */
const load = createRequire(import.meta.url);
let napi: typeof ZstdNapi | undefined;
let binding: typeof ZstdBinding | undefined;

/** zstd-napi's streams (DecompressStream and the like). */
export function zstdNapi(): typeof ZstdNapi {
  return (napi ??= loadOrExplain('zstd-napi') as typeof ZstdNapi);
}

/** zstd-napi's native binding (CCtx, DCtx and their enums) alone. */
export function zstdBinding(): typeof ZstdBinding {
  return (binding ??= loadOrExplain('zstd-napi/binding.js') as typeof ZstdBinding);
}

/**
 * An install whose native addon was never built (npm skips install scripts it was not told to allow) now fails here,
 * at the first compression or decompression, rather than when the command's modules load: it is told so, with the fix.
 */
function loadOrExplain(id: string): unknown {
  try {
    return load(id);
  } catch (err) {
    throw new TykdrError('internal', `zstd could not be loaded (${id}: ${(err as Error).message.split('\n')[0]})`, {
      fix: "reinstall tykdr with zstd-napi's install script allowed (npm ci in the install folder; package.json's allowScripts approves zstd-napi), then run the command again",
      cause: err,
    });
  }
}
