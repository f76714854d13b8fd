import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPONENT_KINDS, targetOf } from '../../src/backends/registry.js';
import { CHECK_NAMES, CHECK_REGISTRY, checksBy, checksOfRole } from '../../src/core/checks/registry.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Target } from '../../src/core/interfaces/target.js';
import { loadPlan, parsePlan } from '../../src/core/plan/plan.js';
import { SERVICE_CHECKS } from '../../src/verify/service-checks.js';
import { repoRoot } from '../helpers/paths.js';

/** One registry of checks (src/core/checks/registry.ts): plans, targets and service checks all agree with it. */
describe('the check registry', () => {
  it('every check in a built-in plan is registered, and every registered check is used by some plan', async () => {
    const files = (await readdir(path.join(repoRoot, 'plans'))).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    const used = new Set<string>();
    for (const f of files) for (const s of (await loadPlan(path.join(repoRoot, 'plans', f))).steps) for (const c of s.verify) used.add(c);
    expect([...used].filter((c) => !(CHECK_NAMES as string[]).includes(c)), 'checks used by plans but not registered').toEqual([]);
    expect(CHECK_NAMES.filter((c) => !used.has(c)), 'registered checks no built-in plan uses').toEqual([]);
  });

  it('a plan naming an unknown check, or a check of another component, is refused with the offered list', () => {
    for (const [check, component] of [['redis-pong', 'redis'], ['gateway-ready', 'redis']] as const) {
      let err: unknown;
      try {
        parsePlan(`version: 1\nname: t\nsteps:\n  - id: a\n    component: ${component}\n    verify: [${check}]\n`, '/p/plan.yaml');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TykdrError);
      expect((err as TykdrError).message).toContain(`"${check}" is not a check of component ${component}`);
      expect((err as TykdrError).fix).toContain(checksOfRole(component).join(', '));
    }
  });

  it('each target offers only registered checks of its own role, and together they run every data check', async () => {
    const offered = new Set<string>();
    for (const kind of COMPONENT_KINDS) {
      const t = (await targetOf(kind)) as Target;
      expect(t.kind).toBe(kind);
      for (const c of t.checks) {
        expect(CHECK_REGISTRY[c], `${kind} offers unregistered check ${c}`).toBeDefined();
        expect(CHECK_REGISTRY[c].by, `${kind} offers ${c}, which the registry gives to ${CHECK_REGISTRY[c].by}`).not.toBe('service');
        offered.add(c);
      }
    }
    expect(CHECK_NAMES.filter((c) => CHECK_REGISTRY[c].by !== 'service' && !offered.has(c)), 'data checks no target runs').toEqual([]);
  });

  it('the service checks implement exactly the registry entries that services run', () => {
    expect(Object.keys(SERVICE_CHECKS).sort()).toEqual([...checksBy('service')].sort());
  });
});
