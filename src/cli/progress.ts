import type { BackupProgress } from '../core/backup.js';
import { formatBytes, formatDuration } from '../core/duration.js';

/**
 * Backup progress on stderr: a line when each component starts and ends, and every few seconds the
 * bytes read so far (every 2 s on a terminal, every 15 s in logs).
 */
export function backupPrinter(write: (line: string) => void, tty: boolean): BackupProgress & { stop(): void } {
  const bytes = new Map<string, number>();
  const startedAt = new Map<string, number>();
  const waits = new Map<string, NodeJS.Timeout>();
  const timer = setInterval(
    () => {
      for (const [c, n] of bytes) {
        const secs = (Date.now() - (startedAt.get(c) ?? Date.now())) / 1000;
        write(`  ${c}: ${formatBytes(n)} read (${formatBytes(n / Math.max(secs, 0.001))}/s)`);
      }
    },
    tty ? 2000 : 15000,
  );
  timer.unref();
  return {
    started: (id, components) => write(`Snapshot ${id}: ${components.join(', ')}`),
    componentStarted: (c, kind) => {
      bytes.set(c, 0);
      startedAt.set(c, Date.now());
      write(`  ${c} (${kind}): started`);
      if (kind === 'redis') {
        // A diskless SYNC starts only after the server's repl-diskless-sync-delay (default 5 s), which lets other
        // replicas join the same transfer. tykdr never changes server config; it says why nothing moves yet.
        const t = setTimeout(() => {
          if (bytes.get(c) === 0) {
            write(`  ${c}: waiting for Redis to start the transfer (a diskless sync first waits repl-diskless-sync-delay, 5 s by default, for other replicas; a disk sync first writes the RDB)`);
          }
        }, 1500);
        t.unref();
        waits.set(c, t);
      }
    },
    bytes: (c, n) => bytes.set(c, (bytes.get(c) ?? 0) + n),
    componentDone: (c, e) => {
      bytes.delete(c);
      clearTimeout(waits.get(c));
      const retries = e.artifact.store_retries ?? 0;
      write(
        `  ${c}: done in ${formatDuration(e.duration_ms)}: data ${formatBytes(e.artifact.plaintext_bytes)}, ` +
          `stored ${formatBytes(e.artifact.stored_bytes)}, sha256 ${e.artifact.sha256.slice(0, 12)}…` +
          (retries > 0 ? ` (${retries} store ${retries === 1 ? 'retry' : 'retries'})` : ''),
      );
    },
    stop: () => {
      clearInterval(timer);
      for (const t of waits.values()) clearTimeout(t);
    },
  };
}
