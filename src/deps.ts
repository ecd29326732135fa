// The external systems a unit of work talks to (Postgres, Redis), opened lazily and closed when
// the work is done. Routes get one per request through `c.var.deps`; the worker, the sweep and
// background work open their own. Services and queue code depend on this, never on the HTTP layer.
import type { Config } from "./config";
import { openDatabase, type Database } from "./db/client";
import { openRedis, type Redis } from "./queue/redis";

export interface Deps {
  db(): Database;
  redis(): Redis;
  /** closes what was opened; routes call it from waitUntil after the response */
  close(): Promise<void>;
}

/** `deadline` (epoch ms): no Postgres or Redis call of this unit of work may outlast it. */
export function createDeps(config: Config, deadline?: number): Deps {
  let database: Database | undefined;
  let redis: Redis | undefined;
  return {
    db: () => (database ??= openDatabase(config, deadline)),
    redis: () => (redis ??= openRedis(config, deadline)),
    async close() {
      await database?.end();
    },
  };
}
