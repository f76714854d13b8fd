import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { badInput } from '../errors.js';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { parseDuration } from '../duration.js';
import { parseYaml, schemaError } from '../yaml-doc.js';
import { checksOfRole } from '../checks/registry.js';
import { planSchema, type PlanData, type PlanStep } from './schema.js';

/** Plans shipped with tykdr (plans/*.yaml next to package.json). */
export const BUILTIN_PLANS_DIR = path.join(PACKAGE_ROOT, 'plans');

export interface Plan extends PlanData {
  file: string;
  /** SHA-256 (hex) of the plan file's text as loaded: reports cite it as evidence of what ran. */
  sha256?: string;
  /** Steps in execution order: dependencies first, then file order. */
  ordered: Array<PlanStep & { timeoutMs: number }>;
}

/** "full" names plans/full.yaml; anything with a slash or a .yaml/.yml ending is a file path. */
export function planPath(nameOrFile: string): string {
  if (nameOrFile.includes('/') || /\.ya?ml$/.test(nameOrFile)) return path.resolve(nameOrFile);
  if (!/^[a-z][a-z0-9-]*$/.test(nameOrFile)) {
    throw badInput(`plan "${nameOrFile}" is neither a plan name nor a .yaml file`, 'use a name such as full, or a path such as ./my-plan.yaml');
  }
  return path.join(BUILTIN_PLANS_DIR, `${nameOrFile}.yaml`);
}

export async function loadPlan(nameOrFile: string): Promise<Plan> {
  const file = planPath(nameOrFile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const builtin = path.dirname(file) === BUILTIN_PLANS_DIR && !nameOrFile.includes('/');
    throw badInput(
      builtin && code === 'ENOENT' ? `there is no built-in plan "${nameOrFile}"` : `cannot read plan ${file} (${code ?? err})`,
      'built-in plans: full, redis, database, dashboard, gateway; or give the path of your own plan file',
      err,
    );
  }
  return parsePlan(text, file);
}

/**
 * Validates a plan: schema, duplicate ids, unknown dependencies, cycles, and checks that the step's
 * component does not offer. Every error names the file, the path and the line.
 */
export function parsePlan(text: string, file: string): Plan {
  const { doc, lineOf } = parseYaml(text, file);
  const data: unknown = doc.toJS() ?? {};
  const parsed = planSchema.safeParse(data, { jitless: true }); // parsed once a run: see parseConfig
  if (!parsed.success) {
    throw schemaError(parsed.error, data, file, lineOf, { fix: 'see plans/full.yaml for a commented example' });
  }
  const plan = parsed.data;
  const at = (i: number, key?: string) => `${file}${lineOf(key ? ['steps', i, key] : ['steps', i])}: steps[${i}]${key ? `.${key}` : ''}`;
  const ids = new Map<string, number>();
  plan.steps.forEach((s, i) => {
    if (ids.has(s.id)) throw badInput(`${at(i, 'id')} "${s.id}" duplicates steps[${ids.get(s.id)}].id`, 'give every step its own id');
    ids.set(s.id, i);
  });
  plan.steps.forEach((s, i) => {
    for (const d of s.depends_on) {
      if (!ids.has(d)) throw badInput(`${at(i, 'depends_on')}: "${d}" is not a step of this plan`, `use one of: ${[...ids.keys()].join(', ')}`);
      if (d === s.id) throw badInput(`${at(i, 'depends_on')}: step "${s.id}" depends on itself`, 'remove it from its own depends_on');
    }
    const offered: string[] = checksOfRole(s.component);
    s.verify.forEach((c, j) => {
      if (!offered.includes(c)) {
        throw badInput(
          `${file}${lineOf(['steps', i, 'verify', j])}: steps[${i}].verify[${j}] "${c}" is not a check of component ${s.component}`,
          `${s.component} offers: ${offered.join(', ')}`,
        );
      }
    });
  });
  return { ...plan, file, sha256: createHash('sha256').update(text, 'utf8').digest('hex'), ordered: order(plan.steps, file) };
}

/** Kahn's algorithm, keeping file order among steps that are ready together. */
function order(steps: PlanStep[], file: string): Plan['ordered'] {
  const done = new Set<string>();
  const out: Plan['ordered'] = [];
  while (out.length < steps.length) {
    const next = steps.find((s) => !done.has(s.id) && s.depends_on.every((d) => done.has(d)));
    if (!next) {
      const stuck = steps.filter((s) => !done.has(s.id)).map((s) => s.id);
      throw badInput(`${file}: steps ${stuck.join(', ')} depend on each other in a cycle`, 'break the cycle in their depends_on');
    }
    done.add(next.id);
    out.push({ ...next, timeoutMs: parseDuration(next.timeout)! });
  }
  return out;
}
