import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Ties a child process's life to this process's, even through `kill -9` of this process: a tiny `bash`
 * watchdog (bash, not dash: dash's kill takes neither `--` nor a process group) reads its stdin, a pipe from us. When we die, the kernel closes the pipe, the read ends, and the
 * watchdog stops the child (SIGTERM, then SIGKILL after 5 s). Disarm it before stopping the child yourself.
 * A whole process group (`group`) stays watched until the child's stdio pipes close, not only until it exits.
 * The watchdog never keeps Node's event loop alive.
 */
export interface Watchdog {
  /** Ends the watch without touching the child (call before a normal stop). */
  disarm(): void;
}

const SCRIPT = 'read _ignored; kill -TERM -- "$1" 2>/dev/null; sleep 5; kill -KILL -- "$1" 2>/dev/null; exit 0';

/** `group`: the child leads its own process group (spawned with `detached: true`); the whole group is stopped. */
export function watchChild(child: ChildProcess, opts: { group?: boolean } = {}): Watchdog {
  if (child.pid === undefined) return { disarm: () => undefined };
  const target = opts.group ? `-${child.pid}` : String(child.pid);
  const dog = spawn('/bin/bash', ['-c', SCRIPT, 'tykdr-watchdog', target], { stdio: ['pipe', 'ignore', 'ignore'] });
  dog.on('error', () => undefined);
  dog.stdin?.on('error', () => undefined);
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  // The child's own exit makes the watch pointless (and a recycled pid must never be signalled). A group is watched
  // until the child's pipes close: a member that outlives the leader holds them (pg_restore's workers, when the
  // parent is gone first), and a kill -9 of this process then must stop it too.
  const disarm = () => {
    if (dog.exitCode === null && dog.signalCode === null) dog.kill('SIGKILL');
  };
  child.once(opts.group ? 'close' : 'exit', disarm);
  return { disarm };
}
