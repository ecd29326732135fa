// Issue 15 §4: inbound media kept. Inbound Parse attachments and Twilio MMS media are copied into
// R2 (the MEDIA binding, simulated by miniflare) and served by GET /api/v1/messages/{id}/attachments/{n}
// byte for byte; a media fetch that fails is retried by the MediaFetcher's alarm and every try is a
// `media_fetch` event on the message's timeline.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { freshPair } from "./helpers/fixtures";
import { sandboxFile } from "./helpers/sandbox";
import { waitFor } from "./helpers/worker";
import { eventsOf, messageOf, messagesWithProviderId, postTwilioForm, uniqueId } from "./helpers/webhooks";

/** The sandbox's deterministic file: byte i = i % 256. */
const expectedBytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 256);
const pathOf = (url: string) => new URL(url).pathname;

async function download(url: string, overrides = {}, headers: Record<string, string> = {}) {
  const res = await call(pathOf(url), { headers }, overrides);
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

async function mms(media: { url: string; type: string }[]) {
  const pair = freshPair();
  const fields: Record<string, string> = { MessageSid: uniqueId("MM").slice(0, 34), From: pair.to, To: pair.from, Body: "photo", NumMedia: String(media.length), SmsStatus: "received" };
  media.forEach((m, i) => Object.assign(fields, { [`MediaUrl${i}`]: m.url, [`MediaContentType${i}`]: m.type }));
  const res = await postTwilioForm("/api/v1/webhooks/twilio", fields);
  expect(res.status).toBe(200);
  const [stored] = await messagesWithProviderId(fields.MessageSid!);
  return { id: stored!.id, fields };
}

const mediaEvents = async (id: string) => (await eventsOf(id)).filter((e) => e.type === "media_fetch").map((e) => e.data);

describe("inbound email attachments", () => {
  it("an Inbound Parse attachment is kept in R2 and downloads byte for byte with its type and name; auth as the rest of the API", async () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7 + 3) % 256);
    const messageId = `<${uniqueId("parse")}@mail.example.com>`;
    const form = new FormData();
    for (const [name, value] of Object.entries({
      from: "Ann Example <ann@example.com>",
      to: "desk@example.org",
      cc: "Bob <bob@example.org>, carol@example.org",
      subject: "Invoice",
      text: "See attached",
      html: "<p>See attached</p>",
      attachments: "2",
      "attachment-info": JSON.stringify({ attachment1: { filename: "invoice.pdf", type: "application/pdf" }, attachment2: { filename: "notes ü.txt", type: "text/plain" } }),
      headers: `Message-ID: ${messageId}\r\n`,
    })) form.append(name, value);
    form.append("attachment1", new Blob([bytes], { type: "application/pdf" }), "invoice.pdf");
    form.append("attachment2", new Blob(["hello"], { type: "text/plain" }), "notes.txt");
    const request = new Request("http://form.invalid/", { method: "POST", body: form });
    const body = new Uint8Array(await request.arrayBuffer());
    const contentType = request.headers.get("content-type")!;
    const post = () => call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": contentType }, body });
    expect((await post()).status).toBe(200);

    const [stored] = await messagesWithProviderId(messageId);
    const message = await messageOf(stored!.id);
    expect(message.attachments).toEqual([0, 1].map((n) => `http://service.test/api/v1/messages/${stored!.id}/attachments/${n}`));
    expect(message).toMatchObject({ subject: "Invoice", html: "<p>See attached</p>", from: "ann@example.com", from_name: "Ann Example", cc: ["bob@example.org", "carol@example.org"] });

    const first = await download(message.attachments[0]);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get("content-type")).toBe("application/pdf");
    expect(first.res.headers.get("content-disposition")).toContain('filename="invoice.pdf"');
    expect(first.bytes).toEqual(bytes);
    const second = await download(message.attachments[1]);
    expect(new TextDecoder().decode(second.bytes)).toBe("hello");
    expect(second.res.headers.get("content-disposition")).toContain("filename*=UTF-8''notes%20%C3%BC.txt");

    // A redelivery stores nothing new: one message, the same objects.
    expect((await post()).status).toBe(200);
    expect(await messagesWithProviderId(messageId)).toHaveLength(1);
    expect((await download(message.attachments[0])).bytes).toEqual(bytes);

    // Auth like the rest of the API.
    expect((await download(message.attachments[0], { API_KEYS: "k1" })).res.status).toBe(401);
    expect((await download(message.attachments[0], { API_KEYS: "k1" }, { authorization: "Bearer k1" })).res.status).toBe(200);
    // Out of range, another message, a bad index.
    expect((await call(`/api/v1/messages/${stored!.id}/attachments/2`)).status).toBe(404);
    expect((await call(`/api/v1/messages/${crypto.randomUUID()}/attachments/0`)).status).toBe(404);
    expect((await call(`/api/v1/messages/${stored!.id}/attachments/x`)).status).toBe(422);
  });

  it("an attachment over MEDIA_MAX_BYTES is left out and named in metadata", async () => {
    const messageId = `<${uniqueId("big")}@mail.example.com>`;
    const form = new FormData();
    for (const [name, value] of Object.entries({ from: "a@example.com", to: "b@example.org", text: "big", headers: `Message-ID: ${messageId}` })) form.append(name, value);
    form.append("attachment1", new Blob([new Uint8Array(2048)]), "big.bin");
    form.append("attachment2", new Blob(["ok"]), "small.txt");
    const request = new Request("http://form.invalid/", { method: "POST", body: form });
    const res = await call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": request.headers.get("content-type")! }, body: await request.arrayBuffer() }, { MEDIA_MAX_BYTES: "1024" });
    expect(res.status).toBe(200);
    const [stored] = await messagesWithProviderId(messageId);
    const message = await messageOf(stored!.id);
    expect(message.attachments).toHaveLength(1);
    expect(message.metadata.attachments_skipped).toEqual([{ filename: "big.bin", bytes: 2048, reason: "larger than MEDIA_MAX_BYTES (1024)" }]);
    expect(new TextDecoder().decode((await download(message.attachments[0])).bytes)).toBe("ok");
  });
});

describe("inbound MMS media", () => {
  it("is fetched from Twilio with the account's credentials and copied into R2", async () => {
    const name = uniqueId("m");
    const urls = [sandboxFile(`${name}-0.jpg`, { bytes: 5000, type: "image/jpeg", auth: "twilio" }), sandboxFile(`${name}-1.png`, { bytes: 300, type: "image/png", auth: "twilio" })];
    const { id } = await mms([
      { url: urls[0]!, type: "image/jpeg" },
      { url: urls[1]!, type: "image/png" },
    ]);
    const message = await messageOf(id);
    expect(message).toMatchObject({ type: "mms", metadata: { media_content_types: ["image/jpeg", "image/png"] } });
    expect(message.attachments).toEqual([0, 1].map((n) => `http://service.test/api/v1/messages/${id}/attachments/${n}`));

    const events = await waitFor(() => mediaEvents(id), (e) => e.length === 2);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ n: 0, attempt: 1, outcome: "stored", bytes: 5000, content_type: "image/jpeg", http_status: 200 }),
        expect.objectContaining({ n: 1, attempt: 1, outcome: "stored", bytes: 300, content_type: "image/png" }),
      ]),
    );
    const first = await download(message.attachments[0]);
    expect(first.res.headers.get("content-type")).toBe("image/jpeg");
    expect(first.bytes).toEqual(expectedBytes(5000));
    expect((await download(message.attachments[1])).bytes).toEqual(expectedBytes(300));
    // Credentials were required by the sandbox (auth=twilio) and sent: without them it answers 401.
    expect((await fetch(urls[0]!)).status).toBe(401);
  });

  it("a fetch that fails twice is retried by the worker, each try on the timeline, then kept; 409 until then", async () => {
    const url = sandboxFile(`${uniqueId("flaky")}.jpg`, { bytes: 1234, type: "image/jpeg", fail: 2, failstatus: 503 });
    const { id } = await mms([{ url, type: "image/jpeg" }]);
    const pending = await call(`/api/v1/messages/${id}/attachments/0`);
    expect([409, 200]).toContain(pending.status);
    const events = await waitFor(() => mediaEvents(id), (e) => e.some((x) => x.outcome === "stored"), 60_000);
    expect(events.map((e) => [e.attempt, e.outcome, e.http_status])).toEqual([
      [1, "retry", 503],
      [2, "retry", 503],
      [3, "stored", 200],
    ]);
    expect(events[0]!.next_attempt_at).toEqual(expect.any(String));
    expect((await download((await messageOf(id)).attachments[0])).bytes).toEqual(expectedBytes(1234));
  });

  it("a refused fetch (404) fails for good, on the timeline, and the attachment answers 409", async () => {
    const { id } = await mms([{ url: sandboxFile(`${uniqueId("gone")}.jpg`, { status: 404 }), type: "image/jpeg" }]);
    const events = await waitFor(() => mediaEvents(id), (e) => e.length > 0);
    expect(events).toEqual([expect.objectContaining({ n: 0, attempt: 1, outcome: "failed", http_status: 404, error: "HTTP 404" })]);
    const res = await call(`/api/v1/messages/${id}/attachments/0`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "attachment_not_available" });
  });

  it("a redelivered webhook neither stores a second message nor fetches again", async () => {
    const url = sandboxFile(`${uniqueId("once")}.jpg`, { bytes: 10, type: "image/jpeg" });
    const { id, fields } = await mms([{ url, type: "image/jpeg" }]);
    await waitFor(() => mediaEvents(id), (e) => e.length === 1);
    expect((await postTwilioForm("/api/v1/webhooks/twilio", fields)).status).toBe(200);
    expect(await messagesWithProviderId(fields.MessageSid!)).toHaveLength(1);
    const job = await runInDurableObject(env.MEDIA_FETCHER.getByName(id), async (instance) => instance.status());
    expect(job).toMatchObject({ attempt: 1, items: [{ state: "stored" }] });
    expect(await mediaEvents(id)).toHaveLength(1);
  });
});
