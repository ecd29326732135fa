// Proves the legacy routes keep their pre-v1 shapes (§7, §10 cases 33, 55, 57).
import { describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { getJson } from "./helpers/fixtures";

const LEGACY_SMS = { from: "+12016661234", to: "+18045551234", type: "sms", body: "Hi", attachments: null, timestamp: "2024-11-01T14:00:00Z" };

describe("legacy routes", () => {
  it("sends sms, mms and email with the legacy answer (case 55)", async () => {
    const sms = await call("/api/messages/sms", jsonRequest("POST", LEGACY_SMS));
    expect(sms.status).toBe(200);
    const smsBody = await sms.json<any>();
    expect(smsBody).toMatchObject({ status: "success", type: "sms", provider: "twilio" });
    const stored = await getJson(`/api/v1/messages/${smsBody.message_id}`);
    expect(stored.body.metadata).toEqual({ timestamp: "2024-11-01T14:00:00Z" });
    expect(stored.body.conversation_id).toBe(smsBody.conversation_id);
    const events = await getJson(`/api/v1/messages/${smsBody.message_id}/events`);
    expect(events.body.events[0].data).toEqual({ source: "legacy" });

    const mms = await call("/api/messages/sms", jsonRequest("POST", { ...LEGACY_SMS, type: "mms", attachments: ["https://example.com/a.jpg"] }));
    expect((await mms.json<any>()).type).toBe("mms");
    const inferred = await call("/api/messages/sms", jsonRequest("POST", { ...LEGACY_SMS, type: "whatever", attachments: ["https://example.com/a.jpg"] }));
    expect((await inferred.json<any>()).type).toBe("mms");
    const email = await call("/api/messages/email", jsonRequest("POST", { from: "a@example.com", to: "b@example.com", body: "hello" }));
    expect(await email.json()).toMatchObject({ status: "success", type: "email", provider: "sendgrid" });
    const bad = await call("/api/messages/email", jsonRequest("POST", { from: "a@example.com", to: "nope", body: "x" }));
    expect(bad.status).toBe(422);
  });

  it("replays the same legacy send for the same Idempotency-Key (case 33)", async () => {
    const headers = { "idempotency-key": `legacy-${crypto.randomUUID()}` };
    const first = await call("/api/messages/sms", jsonRequest("POST", LEGACY_SMS, headers));
    const second = await call("/api/messages/sms", jsonRequest("POST", LEGACY_SMS, headers));
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect((await second.json<any>()).message_id).toBe((await first.json<any>()).message_id);
  });

  it("lists conversations and messages in legacy shapes (case 57)", async () => {
    const list = await getJson("/api/conversations");
    expect(list.res.status).toBe(200);
    expect(list.body).toHaveProperty("conversations");
    expect(list.body).toHaveProperty("total");
    const none = await getJson("/api/conversations/1/messages");
    expect(none.res.status).toBe(200);
    expect(none.body).toEqual({ messages: [], total: 0, conversation_id: "1", limit: 50, offset: 0 });
    expect((await getJson("/api/conversations?limit=0")).res.status).toBe(422);

    const sent = await call("/api/messages/sms", jsonRequest("POST", LEGACY_SMS));
    const { conversation_id } = await sent.json<any>();
    const messages = await getJson(`/api/conversations/${conversation_id}/messages`);
    expect(Object.keys(messages.body.messages[0]).sort()).toEqual(
      ["body", "conversation_id", "created_at", "direction", "from", "id", "provider", "sent_at", "status", "to", "type"],
    );
  });
});
