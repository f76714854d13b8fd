import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FilesComponent } from '../../../core/config/load.js';
import type { Target } from '../../../core/interfaces/target.js';
import { destinationOf } from '../../../core/restore/destination.js';
import { restoreFiles } from './restore-files.js';

/** Config tarballs: extracted back to their roots (or under --files-to); the plan role is the component's `role`. */
export const filesTarget: Target<FilesComponent> = {
  kind: 'files',
  artifactKinds: ['files'],
  checks: ['files-restored'],
  role: (entry) => {
    const role = entry.source.role;
    return role === 'dashboard' ? 'dashboard' : role === undefined || role === 'gateway' ? 'gateway' : null;
  },
  roleOf: (c) => (c.role === 'dashboard' ? 'dashboard' : c.role === 'gateway' ? 'gateway' : null),

  async assess({ name, component: c, filesTo }) {
    const to = filesTo ?? c.restore.to;
    const out = [];
    for (const root of c.roots) {
      const dest = destinationOf(path.relative('/', root), to);
      const n = await readdir(dest).then((e) => e.length, () => 0);
      out.push({ component: name, target: dest, liveData: n > 0 ? `${n} entries` : null });
    }
    return out;
  },

  async restore(i) {
    i.note(`  restoring ${i.name} (files)`);
    return restoreFiles({
      component: i.component,
      manifest: i.entry,
      tarFile: i.stagedFile,
      to: i.filesTo ?? i.component.restore.to,
      restoreId: i.restoreId,
      signal: i.signal,
    });
  },

  async scratch({ component, dir }) {
    const to = path.join(dir, 'files');
    return {
      component: { ...component, restore: { ...component.restore, to } },
      stop: () => rm(to, { recursive: true, force: true }).then(() => [], (err: Error) => [`could not remove the drill folder ${to}: ${err.message}`]),
    };
  },
};
