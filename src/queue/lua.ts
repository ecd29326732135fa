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
