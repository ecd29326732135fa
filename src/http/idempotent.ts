// Wraps a send handler with Idempotency-Key semantics (§1.8): replay a stored 2xx byte for byte,
// 409 on another body or while in flight, store only 2xx, release the key on anything else.
import { errorFields, log } from "../log";
import { claimKey, releaseKey, storeResponse } from "../services/idempotency";
import type { AppContext } from "./context";

export interface JsonResult {
  status: 200 | 201;
  body: unknown;
}

function respond(c: AppContext, status: number, text: string, replayed: boolean): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (replayed) headers["Idempotent-Replayed"] = "true";
  return c.body(text, status as 200, headers);
}

export async function idempotent(c: AppContext, key: string | undefined, body: unknown, work: () => Promise<JsonResult>): Promise<Response> {
  if (key === undefined) {
    const result = await work();
    return respond(c, result.status, JSON.stringify(result.body), false);
  }
  const deps = c.get("deps");
  const scope = `${c.get("apiKeyHash") ?? "shared"}:${c.req.method}:${c.get("route")}`;
  const claim = await claimKey(deps, scope, key, body);
  if (claim.kind === "replay") return respond(c, claim.status, claim.body, true);
  let result: JsonResult;
  try {
    result = await work();
  } catch (error) {
    await releaseKey(deps, scope, key).catch(() => undefined);
    throw error;
  }
  const text = JSON.stringify(result.body);
  try {
    await storeResponse(deps, scope, key, result.status, text);
  } catch (error) {
    // The work is done and durable: answer it. The key stays "in flight" (a retry gets 409) rather
    // than being released, which would let a retry create a second message.
    log("error", "idempotency_response_not_stored", { request_id: c.get("requestId"), ...errorFields(error) });
  }
  return respond(c, result.status, text, false);
}
