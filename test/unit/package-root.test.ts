import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/util/package-root.js';
import { BUILTIN_PLANS_DIR } from '../../src/core/plan/plan.js';
import { TOOL_VERSION } from '../../src/core/version.js';
import { repoRoot } from '../helpers/paths.js';

describe('package root', () => {
  it('is the folder holding package.json, found from the module itself', async () => {
    expect(PACKAGE_ROOT).toBe(path.resolve(repoRoot));
    expect(existsSync(path.join(BUILTIN_PLANS_DIR, 'full.yaml'))).toBe(true);
    const pjson = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    expect(TOOL_VERSION).toBe(pjson.version);
  });
});
