import { describe, expect, it } from 'vitest';
import { loadPlan, parsePlan } from '../../src/core/plan/plan.js';
import { TykdrError } from '../../src/core/errors.js';

function fails(text: string): TykdrError {
  try {
    parsePlan(text, '/p/plan.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('badInput');
    return err as TykdrError;
  }
  throw new Error('expected the plan to be refused');
}

const step = (id: string, extra = '') => `  - id: ${id}\n    component: redis\n    verify: [redis-ping]\n${extra}`;

describe('plans', () => {
  it.each(['full', 'redis', 'database', 'dashboard', 'gateway'])('the built-in plan %s is valid', async (name) => {
    const plan = await loadPlan(name);
    expect(plan.name).toBe(name);
    expect(plan.ordered.length).toBe(plan.steps.length);
  });

  it('full runs redis, database, dashboard, gateway in that order', async () => {
    expect((await loadPlan('full')).ordered.map((s) => s.id)).toEqual(['redis', 'database', 'dashboard', 'gateway']);
  });

  it('orders by dependencies, keeping file order otherwise', () => {
    const plan = parsePlan(`version: 1\nname: t\nsteps:\n${step('b', '    depends_on: [a]\n')}${step('a')}${step('c')}`, '/p/plan.yaml');
    expect(plan.ordered.map((s) => s.id)).toEqual(['a', 'b', 'c']);
    expect(plan.ordered[0]!.timeoutMs).toBe(30 * 60_000);
  });

  it('refuses a cycle, naming the steps', () => {
    const e = fails(`version: 1\nname: t\nsteps:\n${step('a', '    depends_on: [b]\n')}${step('b', '    depends_on: [a]\n')}`);
    expect(e.message).toContain('steps a, b depend on each other in a cycle');
  });

  it('refuses duplicate ids with file, path and line', () => {
    const e = fails(`version: 1\nname: t\nsteps:\n${step('a')}${step('a')}`);
    expect(e.message).toBe('/p/plan.yaml, line 7: steps[1].id "a" duplicates steps[0].id');
  });

  it('refuses an unknown dependency', () => {
    expect(fails(`version: 1\nname: t\nsteps:\n${step('a', '    depends_on: [zz]\n')}`).message).toContain('"zz" is not a step of this plan');
  });

  it('refuses an unknown component with the value and line', () => {
    const e = fails('version: 1\nname: t\nsteps:\n  - id: a\n    component: mongo\n    verify: [x]\n');
    expect(e.message).toContain('/p/plan.yaml, line 5: steps.0.component "mongo"');
  });

  it('refuses a step without verifications', () => {
    expect(fails('version: 1\nname: t\nsteps:\n  - id: a\n    component: redis\n    verify: []\n').message).toContain(
      'every step must verify something',
    );
    expect(fails('version: 1\nname: t\nsteps:\n  - id: a\n    component: redis\n').message).toContain('steps.0.verify');
  });

  it('refuses a check the component does not offer', () => {
    const e = fails('version: 1\nname: t\nsteps:\n  - id: a\n    component: redis\n    verify: [redis-ping, gateway-hello]\n');
    expect(e.message).toContain('steps[0].verify[1] "gateway-hello" is not a check of component redis');
    expect(e.fix).toContain('redis-ping');
  });

  it('refuses unknown keys and a bad timeout', () => {
    expect(fails(`version: 1\nname: t\nsteps:\n${step('a', '    colour: red\n')}`).fix).toContain('"colour"');
    expect(fails(`version: 1\nname: t\nsteps:\n${step('a', '    timeout: soon\n')}`).message).toContain('timeout "soon"');
  });
});
