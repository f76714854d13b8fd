import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENT_KINDS, targetOf } from '../../src/backends/registry.js';
import { CHECK_NAMES, checksOfRole } from '../../src/core/checks/registry.js';
import type { Component } from '../../src/core/config/load.js';
import { isAbortError, TykdrError } from '../../src/core/errors.js';
import type { Target, TargetRestoreInput, TargetRestoreOutcome } from '../../src/core/interfaces/target.js';
import { useCleanups } from '../helpers/cleanups.js';
import { backupToFiles, KIND_FIXTURES, stagedCopy, type KindFixture, type StagedArtifact } from '../helpers/kind-fixtures.js';

/**
 * The Target contract (src/core/interfaces/target.ts), identical for every component kind of the registry
 * (src/backends/registry.ts), each against its real server through a fixture of test/helpers/kind-fixtures.ts.
 * The artifacts are made by the kind's own Source and staged as plaintext files, as the engine stages them
 * after decrypting (encryption and the store play no part here).
 */

const { tempDir } = useCleanups();

function expectNoSecret(text: string, secrets: string[]): void {
  for (const s of secrets) expect(text, 'a secret of the config leaked').not.toContain(s);
}

let restores = 0;

it('every component kind of the registry has a conformance fixture', () => {
  expect(Object.keys(KIND_FIXTURES).sort()).toEqual([...COMPONENT_KINDS].sort());
});

for (const kind of COMPONENT_KINDS) {
  describe(`${kind} target conformance`, () => {
    let fx: KindFixture;
    let target: Target;
    let dir: string;
    let backups: StagedArtifact[];
    /** The fingerprint of the seeded production data the backups hold. */
    let original: unknown;

    beforeAll(async () => {
      const make = KIND_FIXTURES[kind];
      if (!make) throw new Error(`no conformance fixture for component kind "${kind}": add one to test/helpers/kind-fixtures.ts`);
      fx = make();
      await fx.start();
      target = (await targetOf(kind)) as Target;
      dir = await tempDir(`tykdr-conf-${kind}-`);
      original = await fx.fingerprint();
      backups = await backupToFiles(fx.component(), fx.config(), dir);
      expect(await fx.fingerprint(), 'the backup changed the source').toEqual(original);
    });

    afterAll(async () => {
      await fx?.stop();
    });

    /** Restores every artifact of the backup into `component`'s target, as a restore step would. */
    async function restoreAll(component: Component, over: Partial<TargetRestoreInput> = {}): Promise<TargetRestoreOutcome[]> {
      const out: TargetRestoreOutcome[] = [];
      for (const b of backups) {
        const n = ++restores;
        out.push(
          await target.restore({
            name: b.source.component,
            component,
            entry: b.entry,
            stagedFile: await stagedCopy(b.file, dir),
            workDir: await mkdtemp(path.join(dir, 'work-')),
            checks: [...target.checks],
            restoreId: `20260101T0000${String(n).padStart(2, '0')}Z-conf`,
            signal: new AbortController().signal,
            note: () => undefined,
            ...over,
          }),
        );
      }
      return out;
    }

    it('is registered under its kind and restores every artifact its source writes', () => {
      expect(target.kind).toBe(kind);
      expect(backups.length).toBeGreaterThan(0);
      for (const b of backups) expect(target.artifactKinds).toContain(b.entry.kind);
    });

    it("offers only checks of the check registry for the role it restores under", () => {
      expect(target.checks.length).toBeGreaterThan(0);
      for (const b of backups) {
        const role = target.role(b.entry);
        expect(role, `no plan role restores ${b.entry.kind}`).not.toBeNull();
        expect(target.roleOf(fx.component())).toBe(role);
        for (const check of target.checks) {
          expect(CHECK_NAMES).toContain(check);
          expect(checksOfRole(role!), `${check} is not a check of role ${role}`).toContain(check);
        }
      }
    });

    it('assess() only reads: live data on a seeded target, none on an empty one, no secrets', async () => {
      await fx.seed();
      const empty = fx.emptyTarget();
      const before = await fx.fingerprint();
      const emptyBefore = await fx.fingerprint(empty);
      for (const b of backups) {
        const seeded = await target.assess({ name: b.source.component, component: fx.component(), entry: b.entry });
        expect(seeded.length).toBeGreaterThan(0);
        for (const a of seeded) {
          expect(a.component).toBe(b.source.component);
          expect(a.liveData, `${a.target}: no live data reported on a seeded target`).not.toBeNull();
        }
        expectNoSecret(JSON.stringify(seeded), fx.secrets);
        // It may run more than once: the same answer.
        expect(await target.assess({ name: b.source.component, component: fx.component(), entry: b.entry })).toEqual(seeded);

        const none = await target.assess({ name: b.source.component, component: empty, entry: b.entry });
        expect(none.length).toBeGreaterThan(0);
        for (const a of none) expect(a.liveData, `${a.target}: live data reported on an empty target`).toBeNull();
        expectNoSecret(JSON.stringify(none), fx.secrets);
      }
      expect(await fx.fingerprint(), 'assess() changed the seeded target').toEqual(before);
      expect(await fx.fingerprint(empty), 'assess() changed the empty target').toEqual(emptyBefore);
    });

    it('restore() into a damaged target: every check it offers passes and the data equals the snapshot', async () => {
      await fx.seed();
      await fx.damage();
      expect(await fx.fingerprint(), 'the damage changed nothing').not.toEqual(original);
      const outcomes = await restoreAll(fx.component());
      for (const out of outcomes) {
        expect(out.checks.map((c) => c.name).sort()).toEqual([...target.checks].sort());
        for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('passed');
        expectNoSecret(JSON.stringify(out), fx.secrets);
      }
      expect(await fx.fingerprint()).toEqual(original);
    });

    it('restore() with an aborted signal rejects with an AbortError and never reports success', async () => {
      await fx.seed();
      const ac = new AbortController();
      ac.abort();
      const result = await restoreAll(fx.component(), { signal: ac.signal }).then(
        (outcomes) => ({ resolved: outcomes }),
        (error: unknown) => ({ error }),
      );
      expect(result, 'restore() resolved although its signal was aborted').toHaveProperty('error');
      const error = (result as { error: unknown }).error;
      expect(isAbortError(error), `rejected with ${String(error)} instead of an AbortError`).toBe(true);
    });

    it('restore() into a target that cannot be reached or written rejects with a targetError, without secrets', async () => {
      await fx.seed();
      const error = await restoreAll(fx.unreachableTarget()).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(TykdrError);
      const e = error as TykdrError;
      expect(e.kind, e.message).toBe('targetError');
      expectNoSecret(`${e.message} ${e.fix ?? ''}`, fx.secrets);
      expect(await fx.fingerprint(), 'a failed restore elsewhere changed production').toEqual(original);
    });

    it('scratch() restores somewhere else; production stays as it was; stop() returns [] and removes it', async () => {
      await fx.seed();
      const before = await fx.fingerprint();
      const scratchDir = await tempDir(`tykdr-conf-scratch-${kind}-`);
      const s = await target.scratch({ component: fx.component(), config: fx.config(), dir: scratchDir });
      let stopped = false;
      try {
        expect(s.component.kind).toBe(kind);
        const outcomes = await restoreAll(s.component);
        for (const out of outcomes) {
          const failed = out.checks.filter((c) => c.status === 'failed');
          expect(failed, failed.map((c) => `${c.name}: ${c.detail}`).join('; ')).toEqual([]);
        }
        expect(await fx.fingerprint(), 'restoring into scratch changed production').toEqual(before);
        expect(await fx.fingerprint(s.component), 'scratch does not hold the snapshot').toEqual(original);
        expect(await fx.gone(s.component)).toBe(false);
        stopped = true;
        expect(await s.stop()).toEqual([]);
        expect(await fx.gone(s.component), 'stop() left the scratch target behind').toBe(true);
        expect(await fx.fingerprint(), 'stop() changed production').toEqual(before);
      } finally {
        if (!stopped) await s.stop();
      }
    });
  });
}
