import { Args, Flags } from '@oclif/core';
import { errorJson, EXIT_CODES_HELP, TykdrCommand, interruptSignal } from '../cli/base-command.js';
import { openReportingStore } from '../cli/store-events.js';
import { listSnapshots, MANIFEST_READS, resolveSnapshot } from '../core/catalog.js';
import { copySnapshots } from '../core/copies/copy-many.js';
import { namedStore, PRIMARY } from '../core/copies/named-stores.js';
import { formatBytes, formatDuration } from '../core/duration.js';
import { badInput, EXIT_CODES, storeError, type TykdrError } from '../core/errors.js';
import { manifestKey } from '../core/layout.js';
import { mapConcurrent } from '../core/util/pool.js';

export default class Copy extends TykdrCommand<typeof Copy> {
  static override summary = 'Copy snapshots to another store (an off-site copy), without decrypting them.';
  static override description = `Copies a complete snapshot from one store to another store of the config (the \`store\` section is "primary"; more stores are named under \`copies:\`). Objects are streamed as stored (still encrypted; no key is needed), each checked against the manifest's SHA-256 on the way, and the manifest is written last at the destination: an interrupted copy is an incomplete snapshot there, and running the command again finishes it (objects already copied are checked, never rewritten).

SNAPSHOT is an id, "latest" (the default) or "all" (every complete snapshot the destination does not hold complete yet). With --check every copied snapshot is read back from the destination and compared with its manifest.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> copy latest --to offsite',
    '<%= config.bin %> copy all --to offsite --check',
    '<%= config.bin %> copy 20261121T093012Z-4f9a1c --from offsite --to primary --json',
  ];

  static override args = {
    snapshot: Args.string({ description: 'Snapshot id, "latest" or "all".', default: 'latest' }),
  };

  static override flags = {
    to: Flags.string({ summary: 'Name of the destination store (a name under copies:, or "primary").', required: true }),
    from: Flags.string({ summary: 'Name of the source store.', default: PRIMARY }),
    check: Flags.boolean({ summary: 'Read every copied snapshot back from the destination and compare it with its manifest.' }),
  };

  async run(): Promise<unknown> {
    const f = this.flags;
    const config = await this.loadConfig('store');
    if (f.from === f.to) throw badInput(`--from and --to both name the store "${f.to}"`, 'name two different stores');
    const from = openReportingStore(namedStore(config, f.from).cfg, (l) => this.note(l));
    const to = openReportingStore(namedStore(config, f.to).cfg, (l) => this.note(l));
    const interrupt = interruptSignal();
    try {
      const listed = this.args.snapshot === 'all' ? await listSnapshots(from, interrupt.signal) : undefined;
      const ids = listed ? listed.filter((s) => s.complete).map((s) => s.id).reverse() : [(await resolveSnapshot(from, this.args.snapshot, interrupt.signal)).id];
      // A manifest the store failed to give: that snapshot may well be complete. The others are copied, then the
      // command fails naming it (exit 4), rather than call the copy done without it; unless the destination already
      // holds it complete. Oldest first, as the copies.
      let unreadable = (listed?.filter((s) => s.unreadable) ?? []).reverse();
      if (unreadable.length > 0) {
        const held = await mapConcurrent(unreadable, MANIFEST_READS, (s) => to.stat(manifestKey(s.id), { signal: interrupt.signal }).then((o) => o !== null, () => false));
        unreadable = unreadable.filter((_, i) => !held[i]);
      }
      if (ids.length === 0) this.log(`No complete snapshot in ${from.location}: nothing to copy.`);
      const results = await copySnapshots({
        from,
        to,
        ids,
        check: f.check,
        signal: interrupt.signal,
        note: (l) => this.note(l),
      });
      for (const r of results) {
        const copied = r.objects.filter((o) => o.status === 'copied').length;
        const verb = r.manifest === 'present' ? 'already complete at' : 'copied to';
        this.log(
          `${r.id} ${verb} "${f.to}" (${to.location}): ${copied} of ${r.objects.length} objects moved, ${formatBytes(r.bytesCopied)}, ${formatDuration(r.durationMs)}` +
            (r.checked ? `; read back and matched the manifest (${r.checked.objects} objects)` : ''),
        );
      }
      // A damaged manifest (malformed): nothing to copy it by. Said, not passed over (verify --all fails on it).
      const damaged = (listed?.filter((s) => s.damaged) ?? []).reverse();
      for (const s of damaged) this.note(`snapshot ${s.id} in ${from.location} not copied: its manifest is damaged (${s.problem}); \`tykdr verify --all\` reports it`);
      for (const s of (listed?.filter((x) => x.newerFormat) ?? []).reverse()) {
        this.note(`snapshot ${s.id} in ${from.location} not copied: ${s.problem}; copy it with the tykdr version that wrote it`);
      }
      let failure: TykdrError | undefined;
      if (unreadable.length > 0) {
        const named = unreadable.slice(0, 3).map((s) => s.id).join(', ') + (unreadable.length > 3 ? ` and ${unreadable.length - 3} more` : '');
        const again = `tykdr copy all${f.from === PRIMARY ? '' : ` --from ${f.from}`} --to ${f.to}${f.check ? ' --check' : ''}`;
        failure = storeError(
          `${unreadable.length === 1 ? 'snapshot' : `${unreadable.length} snapshots:`} ${named} in ${from.location} could not be copied: ` +
            `the store failed to give ${unreadable.length === 1 ? 'its manifest' : 'their manifests'} (${unreadable[0]!.problem})`,
          `check the store "${f.from}", then run \`${again}\` again (what was copied is kept)`,
        );
        // The copies made are still reported (and in --json); the command fails after them.
        process.exitCode = EXIT_CODES.storeError;
        this.printError(failure);
      }
      return {
        ok: failure === undefined,
        ...(failure
          ? {
              error: errorJson(failure),
              unreadable: unreadable.map((s) => ({ id: s.id, reason: s.problem })),
            }
          : {}),
        ...(damaged.length > 0 ? { damaged: damaged.map((s) => ({ id: s.id, reason: s.problem })) } : {}),
        from: { name: f.from, location: from.location },
        to: { name: f.to, location: to.location },
        snapshots: results.map((r) => ({
          id: r.id,
          manifest: r.manifest,
          bytes_copied: r.bytesCopied,
          duration_ms: r.durationMs,
          objects: r.objects,
          ...(r.checked ? { checked: r.checked } : {}),
        })),
      };
    } finally {
      interrupt.dispose();
    }
  }
}
