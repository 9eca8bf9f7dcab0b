import type { Cluster, Redis } from 'ioredis';
import { CoalescedWrites } from './coalescedWrites';
import { GCRA_LUA, SLIDING_WINDOW_LUA } from './redisScripts';
import { limitResult, type LimitRequest, type LimitResult, type LimitStore } from './store';

type ScriptReply = [number, number, number, number, number];
type Script = (key: string, limit: number, windowMs: number, peek: string) => Promise<ScriptReply>;

interface ScriptCommands {
  tollgateSlidingWindow: Script;
  tollgateGcra: Script;
}

/** Registers the limiter scripts once per client; ioredis loads them on every node on NOSCRIPT. */
function withScripts(client: Redis | Cluster): ScriptCommands {
  const c = client as (Redis | Cluster) & Partial<ScriptCommands>;
  if (!c.tollgateSlidingWindow) c.defineCommand('tollgateSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
  if (!c.tollgateGcra) c.defineCommand('tollgateGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  return c as unknown as ScriptCommands;
}

function toResult(r: ScriptReply): LimitResult {
  return limitResult(r[0] === 1, r[1], r[2], r[3], r[4]);
}

/**
 * One EVALSHA per decision. All keys of one caller share the hash tag `{id}`, so a
 * script never crosses Redis Cluster slots.
 */
export class RedisLimitStore implements LimitStore {
  private readonly scripts: ScriptCommands;
  private readonly writes: CoalescedWrites;

  constructor(client: Redis | Cluster, private readonly prefix: string) {
    this.scripts = withScripts(client);
    this.writes = new CoalescedWrites(client);
  }

  decide(req: LimitRequest): Promise<LimitResult> {
    return this.run(req, '0');
  }

  peek(req: LimitRequest): Promise<LimitResult> {
    return this.run(req, '1');
  }

  private async run(req: LimitRequest, peek: string): Promise<LimitResult> {
    this.writes.hold();
    if (req.algorithm === 'gcra') {
      return toResult(await this.scripts.tollgateGcra(`${this.prefix}{${req.id}}:gcra`, req.limit, req.windowMs, peek));
    }
    return toResult(await this.scripts.tollgateSlidingWindow(`${this.prefix}{${req.id}}:sw`, req.limit, req.windowMs, peek));
  }
}
