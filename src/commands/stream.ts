import { Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal } from '../cli/base-command.js';
import { reportingBackends } from '../cli/store-events.js';
import { captureRedis } from '../backends/redis/pitr/capture.js';
import { runBackup } from '../core/backup.js';
import type { RedisComponent } from '../core/config/load.js';
import { formatBytes, formatDuration, requireDuration } from '../core/duration.js';
import { resolveEncryptionKeys } from '../core/encryption-keys.js';
import { badInput } from '../core/errors.js';
import { ChainWriter } from '../core/pitr/chain.js';

export default class Stream extends TykdrCommand<typeof Stream> {
  static override summary = 'Capture a Redis component continuously for point-in-time restore (runs until stopped).';
  static override description = `Attaches to the Redis master as a replica (PSYNC). The RDB it is sent becomes an ordinary snapshot, the base of a chain; the replication feed that follows is stored in segments (closed every --segment or --segment-mib, each age(zstd(...)) with its replication offsets and the time range it covers) under streams/<chain>/ in the store. \`tykdr restore --plan redis --to-time T\` restores the base and replays the feed up to T.

It acknowledges offsets like a replica. When the connection drops (or Sentinel fails the master over) it continues the same replication history with PSYNC; when the master cannot continue it, it takes a new base and the new chain records the gap. SIGINT or SIGTERM stores the open segment and ends.

The master counts tykdr among its replicas (INFO replication); \`min-replicas-to-write\` and WAIT see it too. The ACL user needs +psync +replconf +ping (and +info).

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> stream --component redis',
    '<%= config.bin %> stream --component redis --segment 2s --for 10m --json',
  ];

  static override flags = {
    component: Flags.string({ summary: 'The Redis component (default: the only one).' }),
    segment: Flags.string({ summary: 'Close a segment after this long (it then holds everything that arrived).', default: '5s' }),
    'segment-mib': Flags.integer({ summary: 'Close a segment at this many MiB of feed.', default: 16, min: 1, max: 1024 }),
    for: Flags.string({ summary: 'Stop after this long (default: run until SIGINT or SIGTERM).' }),
  };

  async run(): Promise<unknown> {
    const f = this.flags;
    const config = await this.loadConfig('backup');
    const redis = Object.values(config.components).filter((c): c is RedisComponent => c.kind === 'redis');
    const cfg = f.component ? redis.find((c) => c.name === f.component) : redis.length === 1 ? redis[0] : undefined;
    if (!cfg) {
      throw badInput(
        f.component ? `"${f.component}" is not a Redis component of ${config.file}` : `${config.file} has ${redis.length} Redis components`,
        `name one with --component (${redis.map((c) => c.name).join(', ') || 'none configured'})`,
      );
    }
    if (cfg.mode === 'keys') {
      throw badInput(`components.${cfg.name} uses the key-level mode: point-in-time capture needs the replication protocol (PSYNC)`, 'use it with a standalone or Sentinel-managed Redis');
    }
    const segmentMs = requireDuration(f.segment, '--segment');
    const stopAfter = f.for === undefined ? undefined : requireDuration(f.for, '--for');
    const backends = reportingBackends((l) => this.note(l));
    const keys = await resolveEncryptionKeys(config);
    const store = backends.openStore(config.store);
    const interrupt = interruptSignal({ note: 'the open segment is stored first' });
    const started = Date.now();
    // --for: a plain timer (a composite of AbortSignal.timeout can be collected before it fires).
    const stop = new AbortController();
    interrupt.signal.addEventListener('abort', () => stop.abort(interrupt.signal.reason), { once: true });
    const timer = stopAfter === undefined ? undefined : setTimeout(() => stop.abort(new Error(`--for ${f.for} elapsed`)), stopAfter);
    try {
      const r = await captureRedis({
        cfg,
        segmentMs,
        segmentBytes: f['segment-mib'] * 1024 * 1024,
        signal: stop.signal,
        backup: async (source, signal) => {
          const res = await runBackup({
            config,
            backends: { ...backends, openSources: async (c) => (c.name === cfg.name ? [source] : backends.openSources(c)) },
            components: [cfg.name],
            signal,
          });
          return { id: res.id, consistentAt: res.manifest.components[cfg.name]!.consistent_at };
        },
        // No signal: on SIGTERM the open segment must still be stored (the grace deadline bounds it).
        startChain: (record) => ChainWriter.start(record, { store, compression: config.compression, keys }),
        events: {
          connected: (e) =>
            this.note(`${e.kind === 'full' ? 'attached to' : e.failover ? 'continued after a failover on' : 'continued on'} ${e.address} (replication id ${e.replid.slice(0, 8)}…, offset ${e.offset})`),
          base: (e) => this.note(`base snapshot ${e.snapshot} at offset ${e.offset}: chain ${e.snapshot} started`),
          segment: (s) => this.note(`segment ${s.seq}: offsets ${s.start_offset}-${s.end_offset}, ${s.commands} command(s), ${formatBytes(s.plaintext_bytes)}, ${s.from.slice(11, 23)}-${s.to.slice(11, 23)}`),
          disconnected: (e) => this.note(`connection lost at offset ${e.offset}: ${e.reason}; retrying in ${formatDuration(e.retryInMs)}`),
          gap: (e) => this.note(`GAP: nothing is captured from ${e.from} to ${e.to}: ${e.reason}; a new chain starts`),
        },
      });
      this.log(`Captured ${r.segments} segment(s) in ${r.chains.length} new chain(s), up to offset ${r.offset}, in ${formatDuration(Date.now() - started)}.`);
      return { chains: r.chains, segments: r.segments, offset: r.offset, location: store.location };
    } finally {
      if (timer) clearTimeout(timer);
      interrupt.dispose();
    }
  }
}
