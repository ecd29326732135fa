// A Lua script run by its SHA-1 (EVALSHA), so the text travels only when Redis does not have it
// yet: then one EVAL both runs and caches it. One request either way.
import type { Redis } from "./redis";

export class LuaScript {
  private sha?: Promise<string>;

  constructor(private readonly source: string) {}

  private digest(): Promise<string> {
    this.sha ??= crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.source)).then((buf) =>
      Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join(""),
    );
    return this.sha;
  }

  async run(redis: Redis, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await redis.evalsha(await this.digest(), keys, args);
    } catch (error) {
      if (!String(error).includes("NOSCRIPT")) throw error;
      return redis.eval(this.source, keys, args);
    }
  }
}

/**
 * Lua shared by the worker step and the sweep: moves retries whose due time has come from the
 * type's sorted set (members `id:attempt`) back into its stream, as ordinary entries.
 */
export const MOVE_DUE_RETRIES_LUA = `
local function moveDueRetries(stream, retries, now, nowIso, limit)
  local moved = 0
  for _, member in ipairs(redis.call("ZRANGEBYSCORE", retries, "-inf", now, "LIMIT", 0, limit)) do
    local sep = string.find(member, ":", 1, true)
    redis.call("XADD", stream, "*", "data", '{"message_id":"' .. string.sub(member, 1, sep - 1) ..
      '","retry_count":' .. string.sub(member, sep + 1) .. ',"scheduled_at":"' .. nowIso .. '"}')
    redis.call("ZREM", retries, member)
    moved = moved + 1
  end
  return moved
end
`;
