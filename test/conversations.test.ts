// Proves conversation grouping, threads and the conversation routes (§2.3, §4, §10 cases 34-45).
import { describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { EMAIL, freshPair, getJson, send, SMS } from "./helpers/fixtures";

const post = async (path: string, body: unknown) => {
  const res = await call(path, jsonRequest("POST", body));
  return { res, body: await res.json<any>() };
};
const patch = async (path: string, body: unknown) => {
  const res = await call(path, jsonRequest("PATCH", body));
  return { res, body: await res.json<any>() };
};

describe("grouping", () => {
  it("a first SMS opens an active direct conversation (case 34)", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    const { res, body: conversation } = await getJson(`/api/v1/conversations/${body.conversation_id}`);
    expect(res.status).toBe(200);
    expect(conversation).toMatchObject({ type: "direct", status: "active", message_count: 1, unread_count: 0, messages: null, channel_type: "sms" });
    expect(conversation.last_message_at).toBe(body.created_at);
  });

  it("replies and MMS share the pair's conversation; email between others does not (case 35)", async () => {
    const pair = freshPair();
    const first = await send({ ...SMS, ...pair });
    const reply = await send({ ...SMS, from: pair.to, to: pair.from });
    const mms = await send({ type: "mms", ...pair, attachments: ["https://example.com/a.jpg"] });
    expect(reply.body.conversation_id).toBe(first.body.conversation_id);
    expect(mms.body.conversation_id).toBe(first.body.conversation_id);
    const email = await send({ ...EMAIL, to: `other-${Date.now()}@example.com` });
    expect(email.body.conversation_id).not.toBe(first.body.conversation_id);
  });

  it("50 concurrent first messages of a new pair make one conversation with message_count 50", async () => {
    const pair = freshPair();
    const results = await Promise.all(Array.from({ length: 50 }, () => send({ ...SMS, ...pair })));
    expect(results.every((r) => r.res.status === 201)).toBe(true);
    const ids = new Set(results.map((r) => r.body.conversation_id));
    expect(ids.size).toBe(1);
    const { body } = await getJson(`/api/v1/conversations/${[...ids][0]}`);
    expect(body.message_count).toBe(50);
  });

  it("threads: a new thread each time, and replies join their parent's conversation (cases 43, 44)", async () => {
    const email = { ...EMAIL, to: `thread-${Date.now()}@example.com` };
    const first = await send({ ...email, conversation_type: "thread", metadata: { topic: "t" } });
    expect(first.res.status).toBe(201);
    const conversation = await getJson(`/api/v1/conversations/${first.body.conversation_id}`);
    expect(conversation.body.type).toBe("thread");
    expect(conversation.body.metadata).toEqual({ topic: "t" });
    const second = await send({ ...email, conversation_type: "thread" });
    expect(second.body.conversation_id).not.toBe(first.body.conversation_id);

    const reply = await send({ ...email, parent_id: first.body.id });
    expect(reply.body.conversation_id).toBe(first.body.conversation_id);
    expect(reply.body.parent_id).toBe(first.body.id);
    const replyToReply = await send({ ...email, parent_id: reply.body.id });
    expect(replyToReply.body.conversation_id).toBe(first.body.conversation_id);
    const listed = await getJson(`/api/v1/messages?parent_id=${first.body.id}`);
    expect(listed.body.messages.map((m: any) => m.id)).toEqual([reply.body.id]);
    const threadParent = await send({ ...email, parent_id: first.body.id, conversation_type: "thread" });
    expect(threadParent.body.conversation_id).toBe(first.body.conversation_id);
  });

  it("an unknown or malformed parent_id is 422 and stores nothing (case 45)", async () => {
    const id = crypto.randomUUID();
    const unknown = await send({ ...SMS, parent_id: id });
    expect(unknown.res.status).toBe(422);
    expect(unknown.body.message).toBe(`Parent message not found: ${id}`);
    expect(unknown.body.details).toEqual([{ path: "body.parent_id", message: `Parent message not found: ${id}` }]);
    const malformed = await send({ ...SMS, parent_id: "abc" });
    expect(malformed.res.status).toBe(422);
    expect(malformed.body.message).toBe("Invalid UUID");
  });
});

describe("conversation routes", () => {
  it("soft delete closes, a new message reopens, hard delete removes everything (case 37)", async () => {
    const pair = freshPair();
    const { body } = await send({ ...SMS, ...pair });
    const path = `/api/v1/conversations/${body.conversation_id}`;
    expect((await call(path, { method: "DELETE" })).status).toBe(204);
    expect((await getJson(path)).body.status).toBe("closed");
    const again = await send({ ...SMS, ...pair });
    expect(again.body.conversation_id).toBe(body.conversation_id);
    expect((await getJson(path)).body.status).toBe("active");
    expect((await call(`${path}?hard_delete=true`, { method: "DELETE" })).status).toBe(204);
    expect((await getJson(path)).res.status).toBe(404);
    expect((await getJson(`/api/v1/messages/${body.id}`)).res.status).toBe(404);
    expect((await getJson(`/api/v1/messages/${body.id}/events`)).res.status).toBe(404);
  });

  it("PATCH persists title, status and merged metadata; unknown ids are 404 (case 38)", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    const path = `/api/v1/conversations/${body.conversation_id}`;
    const updated = await patch(path, { title: "New Title", metadata: { custom: "value" } });
    expect(updated.res.status).toBe(200);
    const got = await getJson(path);
    expect(got.body).toMatchObject({ title: "New Title", metadata: { custom: "value" } });
    expect((await patch(path, { status: "archived" })).body.status).toBe("archived");
    expect((await patch(path, {})).res.status).toBe(200);
    expect((await patch(path, { title: "x".repeat(256) })).res.status).toBe(422);
    expect((await patch(path, { status: "gone" })).res.status).toBe(422);
    const random = `/api/v1/conversations/${crypto.randomUUID()}`;
    expect((await getJson(random)).res.status).toBe(404);
    expect((await patch(random, { title: "x" })).res.status).toBe(404);
    expect((await call(random, { method: "DELETE" })).status).toBe(404);
    expect((await getJson("/api/v1/conversations/abc")).res.status).toBe(422);
  });

  it("include_messages lists messages oldest first", async () => {
    const pair = freshPair();
    const a = await send({ ...SMS, ...pair, body: "one" });
    const b = await send({ ...SMS, ...pair, body: "two" });
    const { body } = await getJson(`/api/v1/conversations/${a.body.conversation_id}?include_messages=true`);
    expect(body.messages.map((m: any) => m.id)).toEqual([a.body.id, b.body.id]);
  });

  it("lists with or without a slash and reports the true total past the end (case 39)", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    for (const path of ["/api/v1/conversations?limit=100", "/api/v1/conversations/?limit=100"]) {
      const list = await getJson(path);
      expect(list.res.status).toBe(200);
      expect(list.body.conversations.some((c: any) => c.id === body.conversation_id)).toBe(true);
    }
    const past = await getJson("/api/v1/conversations?limit=10&offset=100000");
    expect(past.body.conversations).toEqual([]);
    expect(past.body.total).toBeGreaterThan(0);
    const byParticipant = await getJson(`/api/v1/conversations?participant=${encodeURIComponent(body.to)}`);
    expect(byParticipant.body.conversations.map((c: any) => c.id)).toEqual([body.conversation_id]);
  });

  it("search matches participants, titles and bodies literally, once each (case 40)", async () => {
    const pair = freshPair();
    const tail = pair.to.slice(-4);
    const { body } = await send({ ...SMS, ...pair, body: `call me at ${tail}` });
    const found = await post("/api/v1/conversations/search", { query: tail, limit: 10 });
    expect(found.res.status).toBe(200);
    expect(found.body.conversations.filter((c: any) => c.id === body.conversation_id)).toHaveLength(1);
    expect((await post("/api/v1/conversations/search", { query: "" })).res.status).toBe(422);
    expect((await post("/api/v1/conversations/search", { query: "" })).body.message).toBe("query must be 1-200 characters");
    const marker = `p${Date.now()}`;
    const percent = await send({ ...SMS, ...freshPair(), body: `100% ${marker}` });
    const plain = await send({ ...SMS, ...freshPair(), body: `100x ${marker}` });
    const literal = await post("/api/v1/conversations/search", { query: `0% ${marker}` });
    expect(literal.body.conversations.map((c: any) => c.id)).toEqual([percent.body.conversation_id]);
    const both = await post("/api/v1/conversations/search", { query: marker, limit: 1 });
    expect(both.body.total).toBe(2);
    expect(both.body.conversations).toHaveLength(1);
    expect([percent.body.conversation_id, plain.body.conversation_id]).toContain(both.body.conversations[0].id);
  });

  it("create finds the direct conversation of an SMS pair, validates participants (case 42)", async () => {
    const pair = freshPair();
    const { body } = await send({ ...SMS, ...pair });
    const created = await post("/api/v1/conversations", { participant_from: pair.to, participant_to: pair.from, channel_type: "sms" });
    expect(created.res.status).toBe(201);
    expect(created.body.id).toBe(body.conversation_id);
    const bad = await post("/api/v1/conversations", { participant_from: "abc", participant_to: pair.from, channel_type: "sms" });
    expect(bad.res.status).toBe(422);
    expect(bad.body.message).toBe("participant_from must be a valid phone number for SMS/MMS");
    const missing = await post("/api/v1/conversations", { type: "thread", participant_from: "a@example.com" });
    expect(missing.body.details).toEqual([{ path: "body", message: "thread conversations require 'participant_from' and 'participant_to'" }]);
    const thread = await post("/api/v1/conversations", { type: "thread", participant_from: "a@example.com", participant_to: "b@example.com", title: "T" });
    expect(thread.body).toMatchObject({ type: "thread", channel_type: "email", title: "T", message_count: 0, last_message_at: null });
  });

  it("read marks inbound messages read and is idempotent", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    const read = await call(`/api/v1/conversations/${body.conversation_id}/read`, { method: "POST" });
    expect(read.status).toBe(200);
    expect((await read.json<any>()).unread_count).toBe(0);
    expect((await call(`/api/v1/conversations/${crypto.randomUUID()}/read`, { method: "POST" })).status).toBe(404);
  });
});
