import { Flags } from '@oclif/core';
import { openReportingStore } from '../cli/store-events.js';
import { namedStore, PRIMARY } from '../core/copies/named-stores.js';
import { listSnapshots, MANIFEST_READS, snapshotStatus } from '../core/catalog.js';
import { formatBytes, formatDuration } from '../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand, requireStoreFolder } from '../cli/base-command.js';
import { checkManifestSignature, type ManifestSignatureCheck } from '../core/signing/manifest-signature.js';
import { mapConcurrent } from '../core/util/pool.js';

export default class Snapshots extends TykdrCommand<typeof Snapshots> {
  static override summary = 'List snapshots in the store, newest first.';
  static override description = `Shows each snapshot's id, age, completeness, components and sizes: DATA is what was backed up (before compression and encryption), STORED the compressed, encrypted data objects as the backup summary reports them (for an incomplete snapshot, whatever objects it left; --json's stored_bytes also counts the manifest and its signature). A snapshot is complete only when its manifest exists; incomplete ones (interrupted or failed backups) are listed so they can be seen and pruned.

STATUS: "complete"; "INCOMPLETE" (no manifest: the backup did not finish); "DAMAGED" (a manifest that is malformed or names another snapshot: restore and verify refuse it); "UNREADABLE" (the store failed to give the manifest: nothing says it is incomplete); "NEWER FORMAT" (written by a newer tykdr). Each of the last three is explained under the table, and in --json's problem.

SIGNATURE says whether the manifest is signed (manifest.json.sig). With signing.verifyKeys configured each signature is checked: "verified", "UNSIGNED" or "BAD" (restore, drill and verify refuse the last two); without it, "signed (not checked)" or "unsigned (not checked)".

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> snapshots', '<%= config.bin %> snapshots --json', '<%= config.bin %> snapshots --store offsite'];

  static override flags = {
    store: Flags.string({ summary: 'Which store: "primary" (the store section, the default) or a name under copies:.' }),
  };

  async run(): Promise<unknown> {
    const config = await this.loadConfig('store');
    const named = namedStore(config, this.flags.store ?? PRIMARY);
    await requireStoreFolder(named.cfg, config.file);
    const store = openReportingStore(named.cfg, (l) => this.note(l));
    const list = await listSnapshots(store);
    // Without signing.verifyKeys nothing is checked (the listing already says which are signed); with them, the checks
    // (a round trip or two to the store each) run several at a time: this is the first command of an incident.
    const checks = new Map<string, ManifestSignatureCheck>();
    if (config.signing.verifyKeys.length > 0) {
      const complete = list.filter((s) => s.manifest);
      const results = await mapConcurrent(complete, MANIFEST_READS, (s) => checkManifestSignature(store, s.manifest!, config.signing));
      complete.forEach((s, i) => checks.set(s.id, results[i]!));
    }
    const signature = (id: string) => checks.get(id)?.status ?? 'not-checked';
    const rows = list.map((s) => ({
      id: s.id,
      complete: s.complete,
      created_at: s.createdAt.toISOString(),
      components: s.components,
      objects: s.objects,
      stored_bytes: s.storedBytes,
      data_bytes: s.dataBytes ?? null,
      artifact_bytes: s.artifactBytes ?? null,
      signed: s.signed,
      signature: signature(s.id),
      ...(s.problem ? { problem: s.problem } : {}),
      ...(s.unreadable ? { unreadable: true } : {}),
      ...(s.damaged ? { damaged: true } : {}),
      ...(s.newerFormat ? { newer_format: true } : {}),
    }));
    if (list.length === 0) {
      this.log(`No snapshots in ${store.location}.`);
    } else {
      const now = Date.now();
      const table = [['ID', 'AGE', 'STATUS', 'DATA', 'STORED', 'COMPONENTS', 'SIGNATURE']];
      const label = { verified: 'verified', unsigned: 'UNSIGNED', bad: 'BAD', 'not-checked': '' } as const;
      for (const s of list) {
        table.push([
          s.id,
          `${formatDuration(now - s.createdAt.getTime())} ago`,
          snapshotStatus(s),
          s.dataBytes === undefined ? '-' : formatBytes(s.dataBytes),
          formatBytes(s.artifactBytes ?? s.storedBytes),
          s.components.join(','),
          label[signature(s.id)] || (s.signed ? 'signed (not checked)' : 'unsigned (not checked)'),
        ]);
      }
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      for (const r of table) this.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
      // An incomplete snapshot's reason is its status; the others' is worth the line (it names what to do).
      for (const s of list) if (!s.complete && snapshotStatus(s) !== 'INCOMPLETE') this.log(`${s.id}: ${s.problem}`);
    }
    return { location: store.location, snapshots: rows };
  }
}
