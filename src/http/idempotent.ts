// The answer to a send (v1 and legacy shapes alike): a new message is handed to the pipeline and
// answered, and with an Idempotency-Key its answer is kept for replay; a replay answers the first
// request's bytes with `Idempotent-Replayed: true`, or, when those were not kept, the message as
// it stands now (never a second message).
import { createDeps } from "../deps";
import { errorFields, log } from "../log";
import { deliverNew, type Delivery } from "../services/delivery";
import type { Message } from "../services/representation";
import { storeAnswer, type Accepted, type KeyClaim } from "../services/send";
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

export async function answerSend(
  c: AppContext,
  delivery: Delivery,
  accepted: Accepted,
  key: KeyClaim | undefined,
  shape: (message: Message) => JsonResult,
): Promise<Response> {
  if (accepted.kind === "replay") {
    if (accepted.stored) return respond(c, accepted.stored.status, accepted.stored.body, true);
    const result = shape(accepted.message);
    return respond(c, result.status, JSON.stringify(result.body), true);
  }
  const result = shape(await deliverNew(delivery, accepted.message));
  const text = JSON.stringify(result.body);
  if (key) {
    // Its own connection: the request's is closed as the response goes out.
    const deps = createDeps(delivery.config);
    delivery.waitUntil(
      storeAnswer(deps, key, accepted.message.id, result.status, text)
        .catch((error: unknown) =>
          // The message stands and the key points at it: a replay then answers its current state.
          log("warn", "idempotency_answer_not_stored", { request_id: c.get("requestId"), ...errorFields(error) }),
        )
        .finally(() => deps.close()),
    );
  }
  return respond(c, result.status, text, false);
}
