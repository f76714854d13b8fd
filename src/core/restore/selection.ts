import path from 'node:path';
import type { Config } from '../config/load.js';
import { badInput, TykdrError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { Plan } from '../plan/plan.js';
import { PLAN_COMPONENTS } from '../plan/roles.js';
import type { Store } from '../interfaces/store.js';
import type { FeedSegment } from '../interfaces/target.js';
import { describeSelection, type KeySelection } from '../tyk/key-selection.js';
import { resolveDecryptionKeys } from './decryption-keys.js';
import type { PlanMembers } from './preflight.js';
import { stageArtifact } from './staging.js';
import { makeWorkDir, removeWorkDir } from './work-dirs.js';

/** What a selective restore would do to one Redis component (restore --dry-run with a selection). */
export interface SelectionPreview {
  component: string;
  /** The target's `details.selection`: filter, counts, would_write_keys, kept_keys, skipped counts. */
  selection: Record<string, unknown>;
}

/**
 * A selection picks Redis keys: the plan must restore nothing but Redis (plan redis), or the other steps
 * would put whole databases and file trees back while the operator meant a few keys.
 */
export function checkSelectionPlan(selection: KeySelection, plan: Plan, members: PlanMembers): void {
  const others = PLAN_COMPONENTS.filter((r) => r !== 'redis' && members.byRole[r].length > 0);
  if (others.length > 0) {
    throw badInput(
      `a selective restore (${describeSelection(selection)}) picks Redis keys, but plan ${plan.name} also restores ${others.map((r) => `${r} (${members.byRole[r].join(', ')})`).join(', ')}`,
      'use --plan redis with --key, --class, --org, --api or --no-overwrite (nothing was changed)',
    );
  }
  if (members.byRole.redis.length === 0) {
    throw badInput(`a selective restore picks Redis keys, but plan ${plan.name} restores no Redis component of this snapshot`, 'use --plan redis with a snapshot that has a Redis component');
  }
}

/**
 * The dry run of a selective restore: the Redis artifacts are staged (downloaded, checked, decrypted:
 * this needs the identity) and read through the selection, and the target is only asked EXISTS for the
 * selected keys. Nothing is written. Returns one preview per Redis component.
 */
export async function previewSelection(o: {
  config: Config;
  store: Store;
  manifest: Manifest;
  members: PlanMembers;
  selection: KeySelection;
  feed?: { component: string; segments: FeedSegment[] };
  identityFile?: string;
  signal?: AbortSignal;
  note?: (line: string) => void;
}): Promise<SelectionPreview[]> {
  const keys = await resolveDecryptionKeys(o.config, o.manifest, o.identityFile);
  const workDir = await makeWorkDir(o.config.restore.stagingDir, 'tykdr-restore-preview-');
  const signal = o.signal ?? new AbortController().signal;
  const out: SelectionPreview[] = [];
  try {
    for (const name of o.members.byRole.redis) {
      const { component, target } = o.members.resolved.get(name)!;
      o.note?.(`staging ${name} to preview the selection: ${o.manifest.components[name]!.artifact.name}`);
      const staged = await stageArtifact({ store: o.store, manifest: o.manifest, component: name, dir: path.join(workDir, 'staged'), keys, signal });
      const res = await target.restore({
        name,
        component,
        entry: o.manifest.components[name]!,
        stagedFile: staged.file,
        workDir: path.join(workDir, name),
        checks: [],
        restoreId: 'dry-run',
        snapshotId: o.manifest.id,
        selection: o.selection,
        ...(o.feed?.component === name ? { feed: o.feed.segments } : {}),
        dryRun: true,
        signal,
        note: o.note ?? (() => undefined),
      });
      const selection = res.details.selection as Record<string, unknown> | undefined;
      if (!selection) throw new TykdrError('internal', `components.${name}: the ${component.kind} target does not support a selective restore`);
      out.push({ component: name, selection });
    }
  } finally {
    await removeWorkDir(workDir).catch(() => undefined);
  }
  return out;
}
