import type { Clock } from '../clock';

export interface Block {
  readonly ip: string;
  /** Epoch ms */
  readonly until: number;
}

export interface BlockPolicy {
  readonly invalidKeyLimit: number;
  readonly windowMs: number;
  readonly blockMs: number;
}

/** Where bad-key counts and blocks are shared. */
export interface BlockStore {
  /** Counts one bad key from `ip`; returns the block it caused, if this one reached the limit. */
  recordInvalid(ip: string, policy: BlockPolicy): Promise<Block | null>;
  list(): Promise<Block[]>;
  /** True when there was a block to lift. */
  unblock(ip: string): Promise<boolean>;
}

/**
 * The blocks in force, held in process so the hot path never asks the store;
 * refreshed from the store on every block event and by the 1 s poll.
 */
export class BlockedIps {
  private blocks = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  /** Milliseconds left of the block on `ip`, or 0. */
  remainingMs(ip: string): number {
    if (this.blocks.size === 0) return 0;
    const until = this.blocks.get(ip);
    if (until === undefined) return 0;
    const left = until - this.clock();
    if (left <= 0) this.blocks.delete(ip);
    return left > 0 ? left : 0;
  }

  add(block: Block): void {
    this.blocks.set(block.ip, block.until);
  }

  replaceAll(blocks: readonly Block[]): void {
    this.blocks = new Map(blocks.map((b) => [b.ip, b.until]));
  }

  remove(ip: string): void {
    this.blocks.delete(ip);
  }

  /** Blocks still in force (expired ones are dropped). */
  active(): Block[] {
    const now = this.clock();
    const out: Block[] = [];
    for (const [ip, until] of this.blocks) {
      if (until > now) out.push({ ip, until });
      else this.blocks.delete(ip);
    }
    return out;
  }
}

export class MemoryBlockStore implements BlockStore {
  private readonly counts = new Map<string, { count: number; resetAt: number }>();
  private readonly blocks = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  recordInvalid(ip: string, policy: BlockPolicy): Promise<Block | null> {
    const now = this.clock();
    let c = this.counts.get(ip);
    if (c === undefined || c.resetAt <= now) {
      c = { count: 0, resetAt: now + policy.windowMs };
      this.counts.set(ip, c);
    }
    c.count += 1;
    if (c.count < policy.invalidKeyLimit) return Promise.resolve(null);
    this.counts.delete(ip);
    const block = { ip, until: now + policy.blockMs };
    this.blocks.set(ip, block.until);
    return Promise.resolve(block);
  }

  list(): Promise<Block[]> {
    const now = this.clock();
    const out: Block[] = [];
    for (const [ip, until] of this.blocks) {
      if (until > now) out.push({ ip, until });
      else this.blocks.delete(ip);
    }
    return Promise.resolve(out);
  }

  unblock(ip: string): Promise<boolean> {
    this.counts.delete(ip);
    return Promise.resolve(this.blocks.delete(ip));
  }
}
