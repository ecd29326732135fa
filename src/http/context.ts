// What every handler can reach through `c.var`: validated config, the request id, the matched
// route template, and the external systems, opened lazily once per request and closed after it.
import type { Context } from "hono";
import type { Config } from "../config";
import type { Deps } from "../deps";
import type { ApiKey } from "./auth";

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    requestId: string;
    /** epoch ms by which this request must be answered (REQUEST_DEADLINE_MS after it arrived) */
    deadline: number;
    /** the route template that matched, e.g. /api/v1/messages/{message_id}; "unmatched" otherwise */
    route: string;
    deps: Deps;
    /** SHA-256 of the presented, valid API key; undefined when auth is off */
    apiKeyHash?: string;
    /** the configured key the request presents (null: none or unknown), once looked up */
    apiKey?: ApiKey | null;
    /** the NAME of the authenticated key (never the key): logs and the message timeline */
    apiKeyName?: string;
  };
};

export type AppContext = Context<AppEnv>;

/** Work that must finish but must not delay the response. */
export function runAfterResponse(c: Context, work: Promise<unknown>) {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    void work; // no execution context (app.request without one): let it run on its own
  }
}
