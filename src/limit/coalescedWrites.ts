import type { Cluster, Redis } from 'ioredis';

/** Commands per write at most: see CoalescedWrites. */
export const COMMANDS_PER_WRITE = 4;

/**
 * Coalesces the limiter's Redis commands issued in one event-loop turn into few socket
 * writes. Under load many requests become readable in the same poll phase; without this,
 * each EVALSHA is its own write() system call (and its reply often its own read). The
 * socket is corked at the first command of a turn and uncorked by setImmediate, which
 * runs right after that poll phase, or as soon as COMMANDS_PER_WRITE commands wait, so
 * that Redis starts on the first ones while the rest of the turn is still being handled
 * (holding a whole turn back made every request of it wait for Redis together, and the
 * process sat idle more often). With one request per turn nothing waits at all. Measured
 * (wrk, 50 connections, alternating rounds): without coalescing 126 µs of gateway CPU per
 * request, with it ≈ 104 µs; groups of 4 gave a few per cent more throughput than whole
 * turns. Commands stay one per request (unlike ioredis auto-pipelining, which also builds
 * a Pipeline object per turn).
 *
 * Only for a single-node client (also under Sentinel); Cluster clients spread commands
 * over several sockets and are left as they are.
 */
export class CoalescedWrites {
  private corked: Redis['stream'] | null = null;
  /** Commands held since the socket was last corked. */
  private held = 0;
  private readonly release = (): void => {
    const stream = this.corked;
    this.corked = null;
    stream?.uncork();
  };

  constructor(private readonly client: Redis | Cluster) {}

  /** Call right before a command is sent. */
  hold(): void {
    if (this.corked !== null) {
      if (this.held >= COMMANDS_PER_WRITE) {
        // Send the group that waits; this command starts the next one.
        this.corked.uncork();
        this.corked.cork();
        this.held = 0;
      }
      this.held += 1;
      return;
    }
    const client = this.client;
    if (!('stream' in client) || client.status !== 'ready') return;
    const stream = client.stream;
    if (!stream.writable) return;
    stream.cork();
    this.corked = stream;
    this.held = 1;
    setImmediate(this.release);
  }
}
