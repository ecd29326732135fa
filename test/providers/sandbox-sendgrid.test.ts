// The provider sandbox's SendGrid refuses what SendGrid's Mail Send refuses (sendgrid-oai's
// mail_send schema and SendGrid's "Mail Send errors" page), one rule at a time with the field
// named, records what it accepted as the recipients would see it, and can lose its credentials.
import { describe, expect, it } from "vitest";
import { createSendGrid } from "../../src/providers/sendgrid";
import {
  SANDBOX_CREDENTIALS,
  outbound,
  producedCallbacks,
  programme,
  received,
  rejection,
  sandboxConfig,
  sandboxUrl,
  sentMails,
  setCredentials,
  uniqueEmail,
} from "../helpers/sandbox";

type Mail = Record<string, any>;

/** A mail SendGrid accepts: one personalization to `to`, a subject, text/plain content. */
const valid = (to: string): Mail => ({
  personalizations: [{ to: [{ email: to }], custom_args: { message_id: "m-1" } }],
  from: { email: "sender@example.com" },
  subject: "Hello",
  content: [{ type: "text/plain", value: "Hi there" }],
});

async function mailSend(body: unknown, key: string = SANDBOX_CREDENTIALS.sendgridApiKey): Promise<{ status: number; json: any; messageId: string | null }> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(`${sandboxUrl()}/v3/mail/send`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: text,
  });
  const raw = await res.text();
  return { status: res.status, json: raw === "" ? null : JSON.parse(raw), messageId: res.headers.get("x-message-id") };
}

/** The fields of a refusal, in order: every refusal is a 400 naming the field. */
async function refusedFields(body: unknown): Promise<(string | null)[]> {
  const answer = await mailSend(body);
  expect(answer.status).toBe(400);
  for (const error of answer.json.errors) expect(error).toEqual({ message: expect.any(String), field: error.field, help: expect.any(String) });
  return answer.json.errors.map((e: { field: string | null }) => e.field);
}

describe("SendGrid Mail Send validation in the sandbox", () => {
  it("accepts the minimal valid mail with 202, an empty body and an X-Message-Id", async () => {
    const answer = await mailSend(valid(uniqueEmail()));
    expect([answer.status, answer.json]).toEqual([202, null]);
    expect(answer.messageId).toMatch(/^[A-Za-z0-9]{22}$/);
  });

  it("refuses a body that is not a JSON object", async () => {
    expect(await refusedFields("[1, 2]")).toEqual([null]);
  });

  it("refuses missing or empty personalizations (field personalizations)", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), personalizations: undefined })).toEqual(["personalizations"]);
    expect(await refusedFields({ ...valid(to), personalizations: [] })).toEqual(["personalizations"]);
  });

  it("refuses more than 1000 personalizations", async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ to: [{ email: `p${i}@example.com` }] }));
    const answer = await mailSend({ ...valid(uniqueEmail()), personalizations: many });
    expect(answer.status).toBe(400);
    expect(answer.json.errors[0]).toMatchObject({ field: "personalizations", message: expect.stringContaining("You have provided 1001 personalizations") });
  });

  it("refuses more than 1000 recipients (to + cc + bcc) in one request", async () => {
    const to = Array.from({ length: 600 }, (_, i) => ({ email: `t${i}@example.com` }));
    const cc = Array.from({ length: 401 }, (_, i) => ({ email: `c${i}@example.com` }));
    const answer = await mailSend({ ...valid(uniqueEmail()), personalizations: [{ to, cc }] });
    expect(answer.json.errors).toEqual([{ field: "personalizations", message: "There is a limit of 1000 total recipients (to + cc + bcc) per request.", help: expect.any(String) }]);
  });

  it("refuses a personalization without a to array (personalizations.0.to)", async () => {
    expect(await refusedFields({ ...valid(uniqueEmail()), personalizations: [{ cc: [{ email: "cc@example.com" }] }] })).toEqual(["personalizations.0.to"]);
    expect(await refusedFields({ ...valid(uniqueEmail()), personalizations: [{ to: [] }] })).toEqual(["personalizations.0.to"]);
  });

  it("refuses a to address that is not valid (personalizations.0.to.0.email) or a to entry without an email", async () => {
    expect(await refusedFields({ ...valid(""), personalizations: [{ to: [{ email: "not an address" }] }] })).toEqual(["personalizations.0.to.0.email"]);
    expect(await refusedFields({ ...valid(""), personalizations: [{ to: ["a@example.com"] }] })).toEqual(["personalizations.0.to.0"]);
  });

  it("refuses a to name that is not a string", async () => {
    expect(await refusedFields({ ...valid(""), personalizations: [{ to: [{ email: "a@example.com", name: 7 }] }] })).toEqual(["personalizations.0.to.0.name"]);
  });

  it("refuses an invalid cc or bcc address, and an empty cc or bcc array", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], cc: [{ email: "cc@" }] }] })).toEqual(["personalizations.0.cc.0.email"]);
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], bcc: [{ name: "no address" }] }] })).toEqual(["personalizations.0.bcc.0"]);
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], cc: [] }] })).toEqual(["personalizations.0.cc"]);
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], bcc: [] }] })).toEqual(["personalizations.0.bcc"]);
  });

  it("refuses the same address twice across to, cc and bcc of a personalization, whatever its case (personalizations.0)", async () => {
    const to = uniqueEmail();
    const answer = await mailSend({ ...valid(to), personalizations: [{ to: [{ email: to }], bcc: [{ email: to.toUpperCase() }] }] });
    expect(answer.status).toBe(400);
    expect(answer.json.errors).toEqual([
      {
        field: "personalizations.0",
        message: `Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [${to.toUpperCase()}] in the personalizations.0.bcc field.`,
        help: expect.any(String),
      },
    ]);
  });

  it("refuses a missing from (from), an invalid from address (from.email) and a from name that is not a string (from.name)", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), from: undefined })).toEqual(["from"]);
    expect(await refusedFields({ ...valid(to), from: { email: "sender.example.com" } })).toEqual(["from.email"]);
    expect(await refusedFields({ ...valid(to), from: { email: "sender@example.com", name: ["x"] } })).toEqual(["from.name"]);
  });

  it("refuses an invalid reply_to address (reply_to.email)", async () => {
    expect(await refusedFields({ ...valid(uniqueEmail()), reply_to: { email: "reply@" } })).toEqual(["reply_to.email"]);
  });

  it("refuses reply_to together with reply_to_list, and a reply_to_list with an address twice or an invalid one", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), reply_to: { email: "r@example.com" }, reply_to_list: [{ email: "s@example.com" }] })).toEqual(["reply_to_list"]);
    expect(await refusedFields({ ...valid(to), reply_to_list: [{ email: "r@example.com" }, { email: "R@example.com" }] })).toEqual(["reply_to_list"]);
    expect(await refusedFields({ ...valid(to), reply_to_list: [{ email: "r@" }] })).toEqual(["reply_to_list.0.email"]);
  });

  it("refuses a missing subject unless every personalization has one, and an empty subject", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), subject: undefined })).toEqual(["subject"]);
    expect(await refusedFields({ ...valid(to), subject: "" })).toEqual(["subject"]);
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], subject: "" }] })).toEqual(["personalizations.0.subject"]);
    expect((await mailSend({ ...valid(to), subject: undefined, personalizations: [{ to: [{ email: to }], subject: "Per recipient" }] })).status).toBe(202);
  });

  it("refuses missing content (content) and an empty content value (content.0.value)", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), content: undefined })).toEqual(["content"]);
    expect(await refusedFields({ ...valid(to), content: [{ type: "text/plain", value: "" }] })).toEqual(["content.0.value"]);
    expect(await refusedFields({ ...valid(to), content: [{ value: "no type" }] })).toEqual(["content.0.type"]);
  });

  it("refuses text/html before text/plain, and text/plain given twice (content)", async () => {
    const to = uniqueEmail();
    const html = { type: "text/html", value: "<p>Hi</p>" };
    const plain = { type: "text/plain", value: "Hi" };
    expect(await refusedFields({ ...valid(to), content: [html, plain] })).toEqual(["content"]);
    expect(await refusedFields({ ...valid(to), content: [plain, plain] })).toEqual(["content"]);
    expect(await refusedFields({ ...valid(to), content: [{ type: "text/calendar", value: "BEGIN:VCALENDAR" }, html] })).toEqual(["content"]);
    expect((await mailSend({ ...valid(to), content: [plain, html, { type: "text/calendar", value: "BEGIN:VCALENDAR" }] })).status).toBe(202);
  });

  it("refuses attachment content that is not base64 (attachments.0.content) and an attachment without a filename (attachments.0.filename)", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), attachments: [{ content: "not base64!", filename: "a.txt" }] })).toEqual(["attachments.0.content"]);
    expect(await refusedFields({ ...valid(to), attachments: [{ content: "aGk=" }] })).toEqual(["attachments.0.filename"]);
  });

  it("refuses an attachment disposition other than inline or attachment, and an inline attachment without content_id", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), attachments: [{ content: "aGk=", filename: "a.txt", disposition: "download" }] })).toEqual(["attachments.0.disposition"]);
    expect(await refusedFields({ ...valid(to), attachments: [{ content: "aGk=", filename: "a.png", disposition: "inline" }] })).toEqual(["attachments.0.content_id"]);
    expect((await mailSend({ ...valid(to), attachments: [{ content: "aGk=", filename: "a.png", disposition: "inline", content_id: "logo" }] })).status).toBe(202);
  });

  it("refuses custom_args whose values are not strings, in a personalization or at the top", async () => {
    const to = uniqueEmail();
    expect(await refusedFields({ ...valid(to), personalizations: [{ to: [{ email: to }], custom_args: { n: 1 } }] })).toEqual(["personalizations.0.custom_args"]);
    expect(await refusedFields({ ...valid(to), custom_args: { flag: true } })).toEqual(["custom_args"]);
  });

  it("names every refusal at once, as SendGrid does", async () => {
    expect(await refusedFields({ personalizations: [{ to: [{ email: uniqueEmail() }] }], content: [{ type: "text/plain", value: "x" }] })).toEqual(["from", "subject"]);
  });

  it("answers 413 for a request over 30 MB", async () => {
    const to = uniqueEmail();
    const answer = await mailSend({ ...valid(to), attachments: [{ content: "A".repeat(30 * 1024 * 1024 + 4), filename: "big.bin" }] });
    expect(answer.status).toBe(413);
    expect(answer.json.errors[0].message).toBe("The JSON payload you have included in your request is too large.");
  });
});

describe("what the sandbox records of an accepted mail", () => {
  it("records the subject, text and html parts, from name, reply_to, cc, bcc and our message id, and posts events for cc and bcc too", async () => {
    const to = uniqueEmail();
    const cc = uniqueEmail();
    const bcc = uniqueEmail();
    await programme(to, [], { url: "https://msg.example.com/api/v1/webhooks/sendgrid", statuses: ["processed"] });
    const answer = await mailSend({
      personalizations: [{ to: [{ email: to, name: "To Person" }], cc: [{ email: cc }], bcc: [{ email: bcc }], custom_args: { message_id: "msg-42" } }],
      from: { email: "sender@example.com", name: "The Sender" },
      reply_to: { email: "replies@example.com", name: "Replies" },
      subject: "Your order",
      content: [
        { type: "text/plain", value: "Plain words" },
        { type: "text/html", value: "<p>HTML words</p>" },
      ],
      attachments: [{ content: "aGVsbG8=", filename: "hello.txt", type: "text/plain" }],
    });
    expect(answer.status).toBe(202);
    const [mail, ...others] = await sentMails(to);
    expect(others).toHaveLength(0);
    expect(mail).toMatchObject({
      sgMessageId: answer.messageId,
      messageId: "msg-42",
      from: { email: "sender@example.com", name: "The Sender" },
      replyTo: { email: "replies@example.com", name: "Replies" },
      replyToList: [],
      subject: "Your order",
      text: "Plain words",
      html: "<p>HTML words</p>",
      personalizations: [{ to: [{ email: to, name: "To Person" }], cc: [{ email: cc }], bcc: [{ email: bcc }], subject: "Your order", customArgs: { message_id: "msg-42" } }],
      attachments: [{ filename: "hello.txt", type: "text/plain", disposition: "attachment", contentId: null, bytes: 5 }],
      recipients: [to, cc, bcc],
    });
    expect((await sentMails(cc)).map((m) => m.sgMessageId)).toEqual([answer.messageId]);
    expect((await received(to)).map((r) => r.messageId)).toEqual(["msg-42"]);
    for (const recipient of [to, cc, bcc]) {
      const events = await producedCallbacks(recipient);
      expect(events.map((e) => [e.status, JSON.parse(e.body)[0].message_id])).toEqual([["processed", "msg-42"]]);
    }
  });

  it("records what the real client sends: our message id on the request and the parsed mail", async () => {
    const to = uniqueEmail();
    const message = outbound({ type: "email", to, body: "<p>Hello</p>", metadata: { subject: "Greetings" } });
    const { providerMessageId } = await createSendGrid(sandboxConfig()).send(message);
    expect((await received(to)).map((r) => r.messageId)).toEqual([message.id]);
    expect(await sentMails(to)).toEqual([
      expect.objectContaining({ sgMessageId: providerMessageId, messageId: message.id, subject: "Greetings", html: "<p>Hello</p>", text: null, from: { email: "sender@example.com" } }),
    ]);
  });
});

describe("SendGrid credentials that stop working", () => {
  it("answers 401 with SendGrid's body while the key is revoked and 403 'access forbidden' while it lacks mail.send; sends again once valid", async () => {
    const to = uniqueEmail();
    const client = createSendGrid(sandboxConfig());
    try {
      await setCredentials({ sendgrid: "revoked" });
      const revoked = await mailSend(valid(to));
      expect([revoked.status, revoked.json]).toEqual([401, { errors: [{ message: "The provided authorization grant is invalid, expired, or revoked", field: null, help: null }] }]);
      expect(await rejection(client.send(outbound({ type: "email", to })))).toMatchObject({ errorClass: "credentials", code: "unauthorized", opts: { httpStatus: 401 } });

      await setCredentials({ sendgrid: "forbidden" });
      const forbidden = await mailSend(valid(to));
      expect([forbidden.status, forbidden.json]).toEqual([403, { errors: [{ field: null, message: "access forbidden" }] }]);
      expect(await rejection(client.send(outbound({ type: "email", to })))).toMatchObject({ errorClass: "credentials", code: "forbidden", opts: { httpStatus: 403 } });
      expect(await sentMails(to)).toEqual([]);
    } finally {
      await setCredentials({ sendgrid: "valid" });
    }
    await expect(client.send(outbound({ type: "email", to }))).resolves.toMatchObject({ httpStatus: 202 });
    expect((await received(to)).map((r) => r.outcome)).toEqual(["401", "401", "403", "403", "ok"]);
  });

  it("answers 401 to a key it does not know, whatever the account's state", async () => {
    const answer = await mailSend(valid(uniqueEmail()), "SG.wrong.key");
    expect(answer.status).toBe(401);
  });

  it("refuses an unknown credential state", async () => {
    const res = await fetch(`${sandboxUrl()}/__sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sendgrid: "expired" }) });
    expect(res.status).toBe(400);
  });
});
