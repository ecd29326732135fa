// The typed client (client/, generated from /openapi.json) against the real app: a send, a read and
// a refusal, typed end to end. If the document and the routes disagree, this fails to compile
// (npm run typecheck) or to run.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createMessagingClient } from "@messaging-service/client";
import worker from "../src/index";
import { freshPair } from "./helpers/fixtures";

const client = createMessagingClient({
  baseUrl: "http://service.test",
  fetch: async (request: Request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, env as Env, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  },
});

describe("typed client", () => {
  it("sends a message and reads it back, with the fields typed", async () => {
    const sent = await client.POST("/api/v1/messages/send", { body: { type: "sms", ...freshPair(), body: "typed hello" } });
    expect(sent.response.status).toBe(201);
    const id = sent.data!.id;
    const read = await client.GET("/api/v1/messages/{message_id}", { params: { path: { message_id: id } } });
    expect(read.data).toMatchObject({ id, type: "sms", body: "typed hello" });
  });

  it("gets the error envelope, typed, for a refused send", async () => {
    const refused = await client.POST("/api/v1/messages/send", { body: { type: "sms", from: "+15551234567", to: "not a number", body: "x" } });
    expect(refused.response.status).toBe(422);
    expect(refused.data).toBeUndefined();
    expect(refused.error).toMatchObject({ error: expect.any(String), message: expect.any(String) });
  });
});
