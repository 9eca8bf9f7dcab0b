import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The absolute path of the executable `name` on the PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * findBinary, or an error that says how to install it. The Prometheus tools are required,
 * not optional: a test that skips when they are absent reads as green in CI while checking
 * nothing.
 */
export function requireBinary(name: string, debianPackage: string): string {
  const found = findBinary(name);
  if (found === undefined) {
    throw new Error(
      `${name} is required by this test and is not on the PATH. Install Debian's ${debianPackage} package ` +
      `(apt-get install -y --no-install-recommends ${debianPackage}); \`npm test\` installs it when absent.`,
    );
  }
  return found;
}
