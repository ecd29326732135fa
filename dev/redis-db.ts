// Claims a Redis logical database (1-15) that no other test run or benchmark is using: a marker
// key set with NX in an empty database. Released (flushed) when the run ends.
import Redis from "ioredis";

export interface ClaimedRedisDb {
  db: number;
  /** a client on the claimed database */
  redis: Redis;
  release(): Promise<void>;
}

export async function claimRedisDb(redisUrl: string): Promise<ClaimedRedisDb> {
  for (let db = 15; db >= 1; db--) {
    const redis = new Redis(`${redisUrl}/${db}`, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const claimed = await redis.set("__run_lock", String(process.pid), "EX", 6 * 3600, "NX");
    if (claimed === "OK" && (await redis.dbsize()) === 1) {
      return {
        db,
        redis,
        async release() {
          await redis.flushdb();
          await redis.quit();
        },
      };
    }
    if (claimed === "OK") await redis.del("__run_lock");
    await redis.quit();
  }
  throw new Error("no free Redis logical database (1-15) for this run");
}
