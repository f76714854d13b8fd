import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Makes sure the servers and tools the tests need exist (installing or building them into .tools/),
 * and that the CLI is compiled. Fails loudly: a missing server is a failed suite, never a skipped one.
 */
export default function setup(): void {
  execFileSync('bash', [path.join(root, 'scripts/tools.sh')], { stdio: 'inherit' });
  if (!existsSync(path.join(root, 'dist/commands'))) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  }
}
