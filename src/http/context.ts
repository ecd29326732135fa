// What every handler can reach through `c.var`: validated config, the request id, the matched
// route template, and the external systems, opened lazily once per request and closed after it.
import type { Context } from "hono";
import type { Config } from "../config";
import { openDatabase, type Database } from "../db/client";
import { openRedis, type Redis } from "../queue/redis";

export interface Deps {
  db(): Database;
  redis(): Redis;
  /** closes what was opened; called from waitUntil after the response */
  close(): Promise<void>;
}

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    requestId: string;
    /** the route template that matched, e.g. /api/v1/messages/{message_id}; "unmatched" otherwise */
    route: string;
    deps: Deps;
    /** SHA-256 of the presented, valid API key; undefined when auth is off */
    apiKeyHash?: string;
  };
};

export type AppContext = Context<AppEnv>;

export function createDeps(config: Config): Deps {
  let database: Database | undefined;
  let redis: Redis | undefined;
  return {
    db: () => (database ??= openDatabase(config)),
    redis: () => (redis ??= openRedis(config)),
    async close() {
      await database?.end();
    },
  };
}
