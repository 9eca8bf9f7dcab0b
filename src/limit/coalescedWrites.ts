import type { Cluster, Redis } from 'ioredis';

/**
 * Coalesces the limiter's Redis commands issued in one event-loop turn into one socket
 * write. Under load many requests become readable in the same poll phase; without this,
 * each EVALSHA is its own write() system call (and its reply often its own read). The
 * socket is corked at the first command of a turn and uncorked by setImmediate, which
 * runs right after that poll phase, so a command waits at most for the rest of the
 * callbacks of its turn — with one request per turn, not at all. Commands stay one per
 * request (unlike ioredis auto-pipelining, which also builds a Pipeline object per turn).
 *
 * Only for a single-node client (also under Sentinel); Cluster clients spread commands
 * over several sockets and are left as they are.
 */
export class CoalescedWrites {
  private corked: Redis['stream'] | null = null;
  private readonly release = (): void => {
    const stream = this.corked;
    this.corked = null;
    stream?.uncork();
  };

  constructor(private readonly client: Redis | Cluster) {}

  /** Call right before a command is sent. */
  hold(): void {
    if (this.corked !== null) return;
    const client = this.client;
    if (!('stream' in client) || client.status !== 'ready') return;
    const stream = client.stream;
    if (!stream.writable) return;
    stream.cork();
    this.corked = stream;
    setImmediate(this.release);
  }
}
