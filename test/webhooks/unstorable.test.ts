// Every inbound is kept: text Postgres cannot hold as sent (U+0000, a lone UTF-16 surrogate) is
// replaced with U+FFFD and the replacement recorded on the message, never answered with a 5xx (the
// provider would retry a message that can never be stored, or drop it).
import { describe, expect, it } from "vitest";
import { freshPair } from "../helpers/fixtures";
import { eventsOf, inboundParse, messageOf, messagesWithProviderId, postJson, postTwilioForm, sentMessage, statusCallback, uniqueId } from "../helpers/webhooks";
import { call } from "../helpers/http";

describe("text Postgres cannot store", () => {
  it("an inbound SMS (Twilio form) with NUL in its body: 200, stored with U+FFFD, the replacement recorded", async () => {
    const sid = uniqueId("SM");
    const pair = freshPair();
    const res = await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: sid, From: pair.to, To: pair.from, Body: "code\u00001234" });
    expect(res.status).toBe(200);
    const [stored] = await messagesWithProviderId(sid);
    const message = await messageOf(stored!.id);
    expect(message.body).toBe("code\uFFFD1234");
    expect(message.metadata.sanitized).toEqual(["body"]);
  });

  it("an inbound SMS (JSON) with a lone surrogate in its body and NUL in a metadata-bound field: 200 and stored", async () => {
    const id = uniqueId("tw-");
    const pair = freshPair();
    const res = await postJson("/api/v1/webhooks/twilio", { messaging_provider_id: id, from: pair.to, to: pair.from, type: "sms", body: "half \uD83D pair", timestamp: "2024\u0000-01-01" });
    expect(res.status).toBe(200);
    const [stored] = await messagesWithProviderId(id);
    const message = await messageOf(stored!.id);
    expect(message.body).toBe("half \uFFFD pair");
    expect(message.metadata).toMatchObject({ timestamp: "2024\uFFFD-01-01", sanitized: expect.arrayContaining(["body", "metadata.timestamp"]) });
    expect(message.metadata.sanitized).toHaveLength(2);
  });

  it("an inbound email (Inbound Parse) with NUL in its subject and text: 200 and stored", async () => {
    const subject = `hello\u0000${uniqueId("s")}`;
    const { bytes, contentType } = await inboundParse({ from: "Ann <ann@example.com>", to: "desk@example.com", subject, text: "line\u0000two" });
    const res = await call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": contentType }, body: bytes });
    expect(res.status).toBe(200);
    const body = await (await call(`/api/v1/messages?direction=inbound&type=email&limit=100`)).json<any>();
    const message = body.messages.find((m: any) => m.metadata.subject === subject.replace("\u0000", "\uFFFD"));
    expect(message).toBeDefined();
    expect(message.body).toBe("line\uFFFDtwo");
    // The subject is also the message's first-class `subject` (the email fields), sanitized alike.
    expect(message.subject).toBe(subject.replace("\u0000", "\uFFFD"));
    expect([...message.metadata.sanitized].sort()).toEqual(["body", "email.subject", "metadata.subject"]);
  });

  it("a status callback whose ErrorMessage holds NUL: 200, applied, the text stored with U+FFFD", async () => {
    const sent = await sentMessage("sms");
    const res = await statusCallback(sent, "undelivered", { ErrorCode: "30003", ErrorMessage: "Unreachable\u0000handset" });
    expect(res.status).toBe(200);
    const message = await messageOf(sent.id);
    expect(message.status).toBe("undelivered");
    expect(message.error).toEqual({ code: "30003", message: "Unreachable\uFFFDhandset" });
    expect((await eventsOf(sent.id)).some((e) => e.type === "status_changed" && e.data.to === "undelivered")).toBe(true);
  });

  it("a SendGrid event batch with NUL in a reason: 200 and applied", async () => {
    const email = await sentMessage("email");
    const res = await postJson("/api/v1/webhooks/generic/sendgrid", [
      { event: "bounce", sg_event_id: uniqueId("b-"), custom_args: { message_id: email.id }, reason: "550 no\u0000such user", status: "5.1.1" },
    ]);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).result).toMatchObject({ applied: 1 });
    expect((await messageOf(email.id)).error).toEqual({ code: "5.1.1", message: "550 no\uFFFDsuch user" });
  });
});
