import { TestEnvironment } from 'jest-environment-node';
import { closeLeftovers } from './leftovers';

/**
 * Jest's node environment, plus: when a test file ends, whatever the harness opened and the
 * file did not close (servers, child processes) is closed, so a suite that failed half-way
 * through its set-up still lets Jest exit on its own. jest.config.js names this file.
 */
class HarnessEnvironment extends TestEnvironment {
  override async teardown(): Promise<void> {
    await closeLeftovers();
    await super.teardown();
  }
}

// Jest loads a test environment as the module's export itself.
export = HarnessEnvironment;
