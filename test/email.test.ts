// Issue 15 §3: email as email. Every email field reaches the provider sandbox in SendGrid's Mail
// Send shape (checked there as strictly as SendGrid checks it); bad fields are 422s; SendGrid's
// bounce/dropped/spamreport/unsubscribe events suppress the address, so that the next send fails at
// once without a provider call; suppressions are listed and lifted; SMS STOP/START still work.
import { describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { getJson, send, SMS, freshPair } from "./helpers/fixtures";
import { received, SANDBOX_CREDENTIALS, sandboxUrl, sentMails, uniqueEmail } from "./helpers/sandbox";
import { drainAll, messageStatus, settle, waitFor } from "./helpers/worker";
import { eventsOf, postJson } from "./helpers/webhooks";

const email = (fields: Record<string, unknown>) => ({ type: "email", from: "sender@example.com", to: uniqueEmail(), body: "Hello", ...fields });

describe("email fields", () => {
  it("subject, html, a display name, reply_to, cc and bcc reach SendGrid in its documented fields", async () => {
    const to = uniqueEmail();
    const cc = [uniqueEmail(), uniqueEmail()];
    const bcc = [uniqueEmail()];
    const { res, body } = await send({
      type: "email",
      from: "Ann Example <Ann@Example.COM>",
      to,
      subject: "Your order",
      body: "Plain text part",
      html: "<p>HTML part</p>",
      reply_to: "support@example.com",
      cc,
      bcc,
      metadata: { subject: "ignored when subject is given" },
    });
    expect(res.status).toBe(201);
    // Stored and shown as name + address.
    expect(body).toMatchObject({ from: "Ann@example.com", from_name: "Ann Example", subject: "Your order", html: "<p>HTML part</p>", body: "Plain text part", reply_to: "support@example.com", cc, bcc });
    const sent = await settle(body.id, (m) => m.status === "sent", "email");
    expect(sent).toMatchObject({ from_name: "Ann Example", cc, bcc });

    const [mail] = await sentMails(to);
    expect(mail).toBeDefined();
    expect(mail!.request).toEqual({
      personalizations: [{ to: [{ email: to }], cc: cc.map((e) => ({ email: e })), bcc: bcc.map((e) => ({ email: e })), custom_args: { message_id: body.id } }],
      from: { email: "Ann@example.com", name: "Ann Example" },
      reply_to: { email: "support@example.com" },
      subject: "Your order",
      content: [
        { type: "text/plain", value: "Plain text part" },
        { type: "text/html", value: "<p>HTML part</p>" },
      ],
    });
    expect(mail).toMatchObject({ subject: "Your order", text: "Plain text part", html: "<p>HTML part</p>", replyTo: { email: "support@example.com" } });
    // The sandbox sees every recipient, cc and bcc included.
    expect((await sentMails(cc[1]!)).map((m) => m.sgMessageId)).toEqual([mail!.sgMessageId]);
  });

  it("metadata.subject is still honoured; html alone is the only content; a bare body keeps its old rule", async () => {
    const to = uniqueEmail();
    const { body } = await send(email({ to, body: null, html: "<b>only html</b>", metadata: { subject: "Old client" } }));
    expect(body).toMatchObject({ subject: "Old client", from_name: null, cc: [], bcc: [], reply_to: null });
    await settle(body.id, (m) => m.status === "sent", "email");
    const [mail] = await sentMails(to);
    expect(mail!.request).toMatchObject({ subject: "Old client", from: { email: "sender@example.com" }, content: [{ type: "text/html", value: "<b>only html</b>" }] });
    expect(mail!.request.reply_to).toBeUndefined();
    expect((mail!.request as any).personalizations[0].cc).toBeUndefined();

    const legacy = uniqueEmail();
    const old = await call("/api/messages/email", jsonRequest("POST", { from: "a@example.com", to: legacy, body: "<p>Hi</p>" }));
    expect(old.status).toBe(200);
    await drainAll("email");
    const [oldMail] = await waitFor(() => sentMails(legacy), (m) => m.length === 1);
    expect(oldMail!.request).toMatchObject({ subject: "New message", content: [{ type: "text/html", value: "<p>Hi</p>" }] });
  });

  it("the sandbox refuses what SendGrid refuses: html before text, no subject, an address in both to and cc", async () => {
    const mailSend = async (mail: Record<string, unknown>) => {
      const res = await fetch(`${sandboxUrl()}/v3/mail/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${SANDBOX_CREDENTIALS.sendgridApiKey}`, "content-type": "application/json" },
        body: JSON.stringify(mail),
      });
      return { status: res.status, fields: res.status === 202 ? [] : ((await res.json()) as any).errors.map((e: any) => e.field) };
    };
    const to = uniqueEmail();
    const good = { personalizations: [{ to: [{ email: to }], cc: [{ email: uniqueEmail() }] }], from: { email: "a@example.com", name: "A" }, subject: "s", content: [{ type: "text/plain", value: "t" }, { type: "text/html", value: "<p>h</p>" }] };
    expect(await mailSend(good)).toEqual({ status: 202, fields: [] });
    expect(await mailSend({ ...good, content: [...good.content].reverse() })).toEqual({ status: 400, fields: ["content"] });
    const { subject: _omit, ...noSubject } = good;
    expect(await mailSend(noSubject)).toEqual({ status: 400, fields: ["subject"] });
    expect(await mailSend({ ...good, personalizations: [{ to: [{ email: to }], cc: [{ email: to.toUpperCase() }] }] })).toEqual({ status: 400, fields: ["personalizations.0"] });
  });

  it("SMS messages show the email fields empty", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    expect(body).toMatchObject({ subject: null, html: null, from_name: null, reply_to: null, cc: [], bcc: [] });
  });

  it.each([
    ["a subject with a line break", { subject: "a\r\nBcc: x@example.com" }, "body.subject"],
    ["an empty subject", { subject: "  " }, "body.subject"],
    ["a subject that is not a string", { subject: 5 }, "body.subject"],
    ["a bad display-name sender", { from: "Ann <not-an-address>" }, "body.from"],
    ["a display name with a line break", { from: "Ann\nX <ann@example.com>" }, "body.from"],
    ["a bad reply_to", { reply_to: "nobody" }, "body.reply_to"],
    ["cc that is not a list", { cc: "x@example.com" }, "body.cc"],
    ["a bad cc entry", { cc: ["ok@example.com", "bad"] }, "body.cc.1"],
    ["the recipient again in bcc", { to: "dup@example.com", bcc: ["DUP@example.com"] }, "body.bcc.0"],
    ["the same cc twice", { cc: ["a@example.com", "a@example.com"] }, "body.cc.1"],
    ["more than 50 recipients", { cc: Array.from({ length: 30 }, (_, i) => `c${i}@example.com`), bcc: Array.from({ length: 30 }, (_, i) => `b${i}@example.com`) }, "body.cc"],
    ["too many cc alone", { cc: Array.from({ length: 50 }, (_, i) => `c${i}@example.com`) }, "body.cc"],
    ["html too large", { html: "x".repeat(102_401) }, "body.html"],
    ["neither body nor html nor attachments", { body: null, html: "" }, "body.body"],
  ])("%s is a 422 naming the field", async (_name, fields, path) => {
    const { res, body } = await send(email(fields));
    expect(res.status).toBe(422);
    expect(body.error).toBe("validation_error");
    expect(body.details.map((d: any) => d.path)).toContain(path);
  });

  it("49 copies plus the recipient (50 in all) are accepted", async () => {
    const { res } = await send(email({ cc: Array.from({ length: 25 }, (_, i) => `c${i}@example.com`), bcc: Array.from({ length: 24 }, (_, i) => `b${i}@example.com`) }));
    expect(res.status).toBe(201);
  });
});

/** SendGrid Event Webhook elements for one address (development: no signature required). */
function sgEvent(event: string, address: string, extra: Record<string, unknown> = {}) {
  return { email: address, timestamp: Math.floor(Date.now() / 1000), event, sg_event_id: crypto.randomUUID(), sg_message_id: `unknown${crypto.randomUUID()}`, ...extra };
}

async function suppressions(query = "") {
  return (await getJson(`/api/v1/suppressions${query}`)).body;
}

describe("suppressions", () => {
  it("a bounce suppresses the address: the next send fails at once, permanently, and the sandbox never sees it", async () => {
    const to = uniqueEmail();
    const first = await send(email({ to }));
    await settle(first.body.id, (m) => m.status === "sent", "email");
    expect((await postJson("/api/v1/webhooks/sendgrid", [sgEvent("bounce", to, { message_id: first.body.id, status: "5.1.1", reason: "550 no such user" })])).status).toBe(200);
    const listed = await suppressions("?channel=email&limit=500");
    expect(listed.suppressions).toContainEqual(expect.objectContaining({ address: to, channel: "email", reason: "bounce", sender: null, message_id: first.body.id }));

    const requestsBefore = (await received(to)).length;
    const next = await send(email({ to, subject: "again" }));
    expect(next.res.status).toBe(201);
    const failed = await settle(next.body.id, (m) => m.status === "failed", "email");
    expect(failed).toMatchObject({ status: "failed", attempts: 1, error: { code: "recipient_suppressed" } });
    expect(failed.error.message).toContain(to);
    const attempt = (await eventsOf(next.body.id)).find((e) => e.type === "attempt")!;
    expect(attempt.data).toMatchObject({ provider_called: false, error_class: "permanent", error_code: "recipient_suppressed" });
    // The sandbox's own record: no request for the second message.
    expect((await received(to)).length).toBe(requestsBefore);
    expect((await sentMails(to)).map((m) => m.messageId)).toEqual([first.body.id]);

    // Lifted: the next send goes out.
    const lifted = await call(`/api/v1/suppressions/${encodeURIComponent(to)}`, { method: "DELETE" });
    expect(lifted.status).toBe(200);
    expect(await lifted.json()).toMatchObject({ address: to, removed: [{ channel: "email", reason: "bounce" }] });
    expect((await call(`/api/v1/suppressions/${encodeURIComponent(to)}`, { method: "DELETE" })).status).toBe(404);
    const third = await send(email({ to }));
    expect((await settle(third.body.id, (m) => m.status === "sent", "email")).status).toBe("sent");
  });

  it.each(["dropped", "spamreport", "unsubscribe", "group_unsubscribe"])("%s suppresses too; a cc'd suppressed address fails the send", async (event) => {
    const address = uniqueEmail();
    expect((await postJson("/api/v1/webhooks/sendgrid", [sgEvent(event, address)])).status).toBe(200);
    const to = uniqueEmail();
    const { body } = await send(email({ to, cc: [address] }));
    const failed = await settle(body.id, (m) => m.status === "failed", "email");
    expect(failed.error).toMatchObject({ code: "recipient_suppressed" });
    expect(failed.error.message).toContain(event);
    expect(await received(to)).toHaveLength(0);
  });

  it("delivered, open and deferred events suppress nothing; a redelivered batch is harmless", async () => {
    const address = uniqueEmail();
    const batch = [sgEvent("delivered", address), sgEvent("open", address), sgEvent("deferred", address)];
    expect((await postJson("/api/v1/webhooks/sendgrid", batch)).status).toBe(200);
    expect((await suppressions("?limit=500")).suppressions.some((s: any) => s.address === address)).toBe(false);
    const bounce = [sgEvent("bounce", address)];
    expect((await postJson("/api/v1/webhooks/sendgrid", bounce)).status).toBe(200);
    expect((await postJson("/api/v1/webhooks/sendgrid", bounce)).status).toBe(200);
    expect((await suppressions("?limit=500")).suppressions.filter((s: any) => s.address === address)).toHaveLength(1);
  });

  it("lists SMS opt-outs with email suppressions, paginated; DELETE lifts an opt-out; STOP and START still work", async () => {
    const pair = freshPair();
    const inbound = (body: string) =>
      postJson("/api/v1/webhooks/twilio", { messaging_provider_id: `in-${crypto.randomUUID()}`, from: pair.to, to: pair.from, type: "sms", body });
    expect((await inbound("STOP")).status).toBe(200);
    const address = uniqueEmail();
    expect((await postJson("/api/v1/webhooks/sendgrid", [sgEvent("spamreport", address)])).status).toBe(200);

    const all = await suppressions("?limit=500");
    expect(all.suppressions).toContainEqual(expect.objectContaining({ address: pair.to, channel: "sms", reason: "STOP", sender: pair.from }));
    expect(all.suppressions).toContainEqual(expect.objectContaining({ address, channel: "email", reason: "spamreport" }));
    expect(all.total).toBeGreaterThanOrEqual(2);
    const page = await suppressions("?limit=1&offset=1");
    expect(page).toMatchObject({ limit: 1, offset: 1, total: all.total });
    expect(page.suppressions).toHaveLength(1);
    expect((await suppressions("?channel=sms&limit=500")).suppressions.every((s: any) => s.channel === "sms")).toBe(true);
    expect((await getJson("/api/v1/suppressions?channel=fax")).res.status).toBe(422);

    // STOP blocks the send, DELETE lifts it (the `+` of E.164 encoded), the send goes out.
    const blocked = await send({ ...SMS, ...pair });
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(blocked.body.id), (m) => m.status === "failed")).error.code).toBe("21610");
    const lifted = await call(`/api/v1/suppressions/${encodeURIComponent(pair.to)}`, { method: "DELETE" });
    expect(lifted.status).toBe(200);
    expect(await lifted.json()).toMatchObject({ address: pair.to, removed: [{ channel: "sms", reason: "STOP", sender: pair.from }] });
    const allowed = await send({ ...SMS, ...pair });
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(allowed.body.id), (m) => m.status === "sent")).status).toBe("sent");

    // STOP again, then START from the recipient lifts it as before.
    expect((await inbound("stop")).status).toBe(200);
    expect((await suppressions("?channel=sms&limit=500")).suppressions.some((s: any) => s.address === pair.to)).toBe(true);
    expect((await inbound("START")).status).toBe(200);
    expect((await suppressions("?channel=sms&limit=500")).suppressions.some((s: any) => s.address === pair.to)).toBe(false);
  });

  it("the suppression routes need the API key like the rest of the API", async () => {
    const res = await call("/api/v1/suppressions", {}, { API_KEYS: "k1" });
    expect(res.status).toBe(401);
    const del = await call("/api/v1/suppressions/a%40example.com", { method: "DELETE" }, { API_KEYS: "k1" });
    expect(del.status).toBe(401);
  });
});
