import vm from 'node:vm';
import { killAllChildren } from './processes';

/*
 * What a test file opened through the harness and did not close, closed when the file ends
 * (test/support/environment.ts calls closeLeftovers from the test environment's teardown,
 * which runs after the file's own afterAll hooks, also when they threw). The usual leak is
 * `[upstream, redis] = await Promise.all([startUpstream(), startRedis()])` when redis-server
 * cannot start: the upstream listens, but the test file never got its handle, and its
 * listening socket would keep Jest from exiting.
 */

// Jest gives every test file its own module registry and its own copy of `process`; the
// environment runs outside both, so the set hangs off the real process (see processes.ts).
const hostProcess = vm.runInThisContext('process') as NodeJS.Process;
const LEFTOVERS_KEY = Symbol.for('tollgate.test.leftovers');
type Closer = () => Promise<unknown>;
type LeftoversHolder = { [LEFTOVERS_KEY]?: Set<Closer> };

function leftovers(): Set<Closer> {
  const holder = hostProcess as unknown as LeftoversHolder;
  holder[LEFTOVERS_KEY] ??= new Set<Closer>();
  return holder[LEFTOVERS_KEY];
}

/** Registers `close` to run when the test file ends; call the returned function once closed. */
export function closeAtFileEnd(close: Closer): () => void {
  const set = leftovers();
  set.add(close);
  return () => set.delete(close);
}

/** Closes what is still registered and SIGKILLs every harness child still alive. Never throws. */
export async function closeLeftovers(): Promise<void> {
  const set = leftovers();
  const closers = [...set];
  set.clear();
  await Promise.allSettled(closers.map((close) => close()));
  killAllChildren();
}
