// The provider sandbox's Twilio is as strict as Twilio's documented Messages API: a message stays
// queued without date_sent until Twilio sends it, the list filters on date_sent and pages by
// PageToken as documented, another system's messages share the account, credentials can stop
// working, and every recorded request names our message id.
import { describe, expect, it } from "vitest";
import { createTwilio } from "../../src/providers/twilio";
import {
  SANDBOX_CREDENTIALS,
  acceptedTwilioMessages,
  insertForeignMessage,
  listTwilio,
  outbound,
  producedCallbacks,
  programme,
  received,
  rejection,
  release,
  sandboxConfig,
  sandboxUrl,
  setCredentials,
  twilioAuthorization,
  twilioMessages,
  uniquePhone,
} from "../helpers/sandbox";

const ACCOUNT_PATH = `/2010-04-01/Accounts/${SANDBOX_CREDENTIALS.twilioAccountSid}`;
const RFC_2822 = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000);

/** Polls until the check passes; the ceiling only stops a broken run from hanging. */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ceilingMs = 10_000): Promise<T> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("Twilio message lifecycle in the sandbox", () => {
  it("keeps a held message queued with date_sent and price null and no callbacks, and sends it on release: sent callbacks only then", async () => {
    const to = uniquePhone();
    await programme(to, [], { hold: true });
    const message = outbound({ type: "sms", to, body: "held back" });
    const result = await createTwilio(sandboxConfig()).send(message);
    expect(result.providerStatus).toBe("queued");

    const [queued, ...others] = await twilioMessages(to);
    expect(others).toHaveLength(0);
    expect(queued).toMatchObject({ sid: result.providerMessageId, status: "queued", date_sent: null, price: null, price_unit: null, held: true });
    expect(await producedCallbacks(to)).toHaveLength(0);

    expect(await release(to)).toEqual([result.providerMessageId]);
    const [sent] = await twilioMessages(to);
    expect(sent).toMatchObject({ status: "delivered", price: "-0.00790", price_unit: "USD", held: false });
    expect(sent!.date_sent).toMatch(RFC_2822);
    expect((await producedCallbacks(to)).map((c) => c.status)).toEqual(["sent", "delivered"]);
    expect(await release(to)).toEqual([]);
  });

  it("answers the create with the initial status and date_sent null even when the message is sent right after (holdMs 0, the default)", async () => {
    const to = uniquePhone();
    const res = await fetch(`${sandboxUrl()}${ACCOUNT_PATH}/Messages.json`, {
      method: "POST",
      headers: { authorization: twilioAuthorization(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ To: to, From: "+15551230000", Body: "now" }).toString(),
    });
    expect(res.status).toBe(201);
    const answer = await res.json<Record<string, unknown>>();
    expect(answer).toMatchObject({ status: "queued", date_sent: null, price: null, price_unit: null, error_code: null, direction: "outbound-api" });
    const [stored] = await twilioMessages(to);
    expect(stored!.sid).toBe(answer.sid);
    expect(stored!.status).toBe("delivered");
    expect(stored!.date_sent).toMatch(RFC_2822);
  });

  it("sends a message by itself once its holdMs has passed", async () => {
    const to = uniquePhone();
    await programme(to, [], { holdMs: 300 });
    await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to }));
    expect((await twilioMessages(to))[0]).toMatchObject({ status: "queued", date_sent: null });
    const [sent] = await eventually(() => twilioMessages(to), (m) => m[0]?.date_sent !== null);
    expect(sent!.status).toBe("delivered");
    expect(sent!.date_sent).toMatch(RFC_2822);
  });

  it("moves a Messaging Service message from accepted to queued (a pool sender, the queued callback) before sending; sent and delivered wait for the send", async () => {
    const to = uniquePhone();
    await programme(to, [], { hold: true });
    const twilio = createTwilio(sandboxConfig({ TWILIO_MESSAGING_SERVICE_SID: "MG0123456789abcdef0123456789abcdef" }));
    const result = await twilio.send(outbound({ type: "sms", to }));
    expect(result.providerStatus).toBe("accepted");
    expect((await twilioMessages(to))[0]).toMatchObject({ status: "queued", from: "+15005550006", date_sent: null, num_segments: "0" });
    expect((await producedCallbacks(to)).map((c) => c.status)).toEqual(["queued"]);
    await release(to);
    expect((await producedCallbacks(to)).map((c) => c.status)).toEqual(["queued", "sent", "delivered"]);
    expect((await twilioMessages(to))[0]).toMatchObject({ status: "delivered", num_segments: "1" });
  });

  it("leaves date_sent null on a message that failed without leaving Twilio, and sets Twilio's error_code", async () => {
    const to = uniquePhone();
    await programme(to, [], { statuses: ["failed"], errorCode: "30007" });
    await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to }));
    expect((await twilioMessages(to))[0]).toMatchObject({ status: "failed", date_sent: null, price: null, error_code: 30007, error_message: "Message filtered" });
  });

  it("stores every message, identical bodies to the same recipient included: nothing is deduplicated", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    const a = await twilio.send(outbound({ type: "sms", to, body: "same words" }));
    const b = await twilio.send(outbound({ type: "sms", to, body: "same words" }));
    expect((await acceptedTwilioMessages(to)).map((m) => m.sid)).toEqual([a.providerMessageId, b.providerMessageId]);
  });

  it("shows exactly the fields of Twilio's Message resource (api.v2010.account.message), in the create answer, the list and a fetch", async () => {
    const to = uniquePhone();
    const { providerMessageId } = await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to }));
    const fields = [
      "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated", "direction", "error_code", "error_message", "from",
      "messaging_service_sid", "num_media", "num_segments", "price", "price_unit", "sid", "status", "subresource_uris", "to", "uri",
    ];
    const listed = (await listTwilio({ To: to })).body.messages[0];
    expect(Object.keys(listed).sort()).toEqual(fields);
    const fetched = await fetch(`${sandboxUrl()}${ACCOUNT_PATH}/Messages/${providerMessageId}.json`, { headers: { authorization: twilioAuthorization() } });
    expect(Object.keys(await fetched.json<object>()).sort()).toEqual(fields);
  });

  it("refuses a To that is not E.164 (21211) and a Body over 1600 characters (21617)", async () => {
    const twilio = createTwilio(sandboxConfig());
    const badTo = await rejection(twilio.send(outbound({ type: "sms", to: "4045550100" })));
    expect([badTo.opts.httpStatus, badTo.code]).toEqual([400, "21211"]);
    const long = await rejection(twilio.send(outbound({ type: "sms", to: uniquePhone(), body: "x".repeat(1601) })));
    expect([long.opts.httpStatus, long.code]).toEqual([400, "21617"]);
  });
});

describe("Twilio Messages list in the sandbox", () => {
  it("does not show a queued message (no date_sent) to a DateSent> filter, but does without one", async () => {
    const to = uniquePhone();
    await programme(to, [], { hold: true });
    const { providerMessageId } = await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to }));

    expect((await listTwilio({ To: to, "DateSent>": today() })).body.messages).toEqual([]);
    expect((await listTwilio({ To: to, DateSent: today() })).body.messages).toEqual([]);
    expect((await listTwilio({ To: to })).body.messages.map((m: { sid: string }) => m.sid)).toEqual([providerMessageId]);

    await release(to);
    expect((await listTwilio({ To: to, "DateSent>": today() })).body.messages.map((m: { sid: string }) => m.sid)).toEqual([providerMessageId]);
  });

  it("filters on date_sent as documented: DateSent> is on and after a day, DateSent< on and before, DateSent that day", async () => {
    const to = uniquePhone();
    const from = "+15557000001";
    const old = await insertForeignMessage({ to, from, body: "three days ago", date_sent: daysAgo(3).toISOString() });
    const recent = await insertForeignMessage({ to, from, body: "yesterday", date_sent: daysAgo(1).toISOString() });
    const day = (d: Date) => d.toISOString().slice(0, 10);
    const sids = async (q: Record<string, string>) => (await listTwilio({ To: to, ...q })).body.messages.map((m: { sid: string }) => m.sid);

    expect(await sids({ "DateSent>": day(daysAgo(1)) })).toEqual([recent.sid]);
    expect(await sids({ "DateSent<": day(daysAgo(3)) })).toEqual([old.sid]);
    expect(await sids({ DateSent: day(daysAgo(3)) })).toEqual([old.sid]);
    expect(await sids({ "DateSent>": day(daysAgo(3)), "DateSent<": day(daysAgo(1)) })).toEqual([recent.sid, old.sid]);
    expect(await sids({ From: "+15557000002" })).toEqual([]);
    expect((await listTwilio({ To: to, "DateSent>": "not a date" })).status).toBe(400);
  });

  it("orders by date_sent, most recent first, with the messages still queued after every sent one", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    const older = await insertForeignMessage({ to, from: "+15551230000", body: "2 days", date_sent: daysAgo(2).toISOString() });
    const newer = await insertForeignMessage({ to, from: "+15551230000", body: "1 day", date_sent: daysAgo(1).toISOString() });
    await programme(to, [], { hold: true });
    const held = await twilio.send(outbound({ type: "sms", to, body: "held" }));
    await programme(to, [], {});
    const sent = await twilio.send(outbound({ type: "sms", to, body: "sent now" }));
    const queuedToo = await insertForeignMessage({ to, from: "+15551230000", body: "someone else's, queued", date_sent: null });

    const order = (await listTwilio({ To: to })).body.messages.map((m: { sid: string }) => m.sid);
    expect(order).toEqual([sent.providerMessageId, newer.sid, older.sid, queuedToo.sid, held.providerMessageId]);
  });

  it("pages through more than one page with next_page_uri (PageToken), with Twilio's paging fields, and back with previous_page_uri", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    const sids: string[] = [];
    for (let i = 0; i < 5; i++) sids.unshift((await twilio.send(outbound({ type: "sms", to, body: `n${i}` }))).providerMessageId);
    // Whole-second date_sent ties are broken by creation, newest first: the list is `sids` in order.

    const first = await listTwilio({ To: to, PageSize: "2" });
    expect(first.status).toBe(200);
    const base = `${ACCOUNT_PATH}/Messages.json?To=${encodeURIComponent(to)}&PageSize=2`;
    expect(first.body).toMatchObject({
      page: 0,
      page_size: 2,
      start: 0,
      end: 1,
      first_page_uri: `${base}&Page=0`,
      uri: `${base}&Page=0`,
      previous_page_uri: null,
      next_page_uri: `${base}&Page=1&PageToken=PA${sids[1]}`,
    });
    expect(first.body.messages.map((m: { sid: string }) => m.sid)).toEqual(sids.slice(0, 2));

    const second = await listTwilio(first.body.next_page_uri);
    expect(second.body).toMatchObject({ page: 1, start: 2, end: 3, previous_page_uri: `${base}&Page=0&PageToken=PB${sids[2]}` });
    expect(second.body.messages.map((m: { sid: string }) => m.sid)).toEqual(sids.slice(2, 4));
    const third = await listTwilio(second.body.next_page_uri);
    expect(third.body).toMatchObject({ page: 2, start: 4, end: 4, next_page_uri: null });
    expect(third.body.messages.map((m: { sid: string }) => m.sid)).toEqual(sids.slice(4));

    const back = await listTwilio(second.body.previous_page_uri);
    expect(back.body.messages.map((m: { sid: string }) => m.sid)).toEqual(sids.slice(0, 2));
  });

  it("takes PageSize 1..1000 (default 50) and refuses anything else, and refuses a PageToken it never gave", async () => {
    const to = uniquePhone();
    expect((await listTwilio({ To: to })).body.page_size).toBe(50);
    expect((await listTwilio({ To: to, PageSize: "1000" })).status).toBe(200);
    for (const size of ["0", "1001", "ten", "2.5"]) {
      const answer = await listTwilio({ To: to, PageSize: size });
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ status: 400, message: "Invalid PageSize" });
    }
    expect((await listTwilio({ To: to, PageToken: "PAnot-a-sid" })).status).toBe(400);
  });
});

describe("another system's messages on the same Twilio account", () => {
  it("lists a foreign message with the fields given (to, from, body, dates, status), fetches it, and never counts it as accepted", async () => {
    const to = uniquePhone();
    const foreign = await insertForeignMessage({
      to,
      from: "+15559990000",
      body: "Your table is ready",
      date_created: "2025-03-04T12:00:00Z",
      date_sent: "2025-03-04T12:00:02Z",
      status: "sent",
    });
    expect(foreign).toMatchObject({
      to,
      from: "+15559990000",
      body: "Your table is ready",
      date_created: "Tue, 04 Mar 2025 12:00:00 +0000",
      date_sent: "Tue, 04 Mar 2025 12:00:02 +0000",
      status: "sent",
      direction: "outbound-api",
    });
    expect(foreign.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect((await listTwilio({ To: to, "DateSent>": "2025-03-04" })).body.messages).toEqual([expect.objectContaining({ sid: foreign.sid })]);
    const fetched = await fetch(`${sandboxUrl()}${ACCOUNT_PATH}/Messages/${foreign.sid}.json`, { headers: { authorization: twilioAuthorization() } });
    expect((await fetched.json<{ sid: string }>()).sid).toBe(foreign.sid);
    expect(await acceptedTwilioMessages(to)).toEqual([]);
    expect((await twilioMessages(to)).map((m) => [m.sid, m.foreign, m.messageId])).toEqual([[foreign.sid, true, null]]);
    expect((await received(to)).filter((r) => r.method === "POST")).toEqual([]);
  });

  it("inserts a queued foreign message when date_sent is null", async () => {
    const to = uniquePhone();
    const queued = await insertForeignMessage({ to, from: "+15559990000", body: "later", date_sent: null });
    expect(queued).toMatchObject({ status: "queued", date_sent: null, price: null });
  });
});

describe("per-message accounting", () => {
  it("records our message id on a Twilio create (from the StatusCallback URL) and on its stored message; a list request carries none", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    const message = outbound({ type: "sms", to });
    await twilio.send(message);
    await twilio.listCandidates!(message, [{ startedAt: Date.now() - 5000, endedAt: Date.now() }]);
    expect((await received(to)).map((r) => [r.method, r.messageId])).toEqual([
      ["POST", message.id],
      ["GET", null],
    ]);
    expect((await twilioMessages(to))[0]!.messageId).toBe(message.id);
  });

  it("records no message id for a create without a StatusCallback", async () => {
    const to = uniquePhone();
    await createTwilio(sandboxConfig({ PUBLIC_BASE_URL: undefined })).send(outbound({ type: "sms", to }));
    expect((await received(to)).map((r) => r.messageId)).toEqual([null]);
  });
});

describe("Twilio credentials that stop working", () => {
  it("answers every REST call 401 with Twilio's 20003 body while revoked, and works again once valid", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    const message = outbound({ type: "sms", to });
    await setCredentials({ twilio: "revoked" });
    try {
      const refused = await rejection(twilio.send(message));
      expect(refused).toMatchObject({ errorClass: "credentials", code: "20003", opts: { httpStatus: 401 } });
      const list = await fetch(`${sandboxUrl()}${ACCOUNT_PATH}/Messages.json?To=${encodeURIComponent(to)}`, { headers: { authorization: twilioAuthorization() } });
      expect(list.status).toBe(401);
      expect(list.headers.get("www-authenticate")).toBe('Basic realm="Twilio API"');
      expect(await list.json()).toEqual({ code: 20003, message: "Authenticate", more_info: "https://www.twilio.com/docs/errors/20003", status: 401 });
      expect((await rejection(twilio.listCandidates!(message, [{ startedAt: Date.now() - 5000, endedAt: Date.now() }]))).opts).toMatchObject({ httpStatus: 401, ambiguous: true });
      expect(await twilioMessages(to)).toEqual([]);
      expect((await received(to)).map((r) => r.outcome)).toEqual(["20003", "20003", "20003"]);
    } finally {
      await setCredentials({ twilio: "valid" });
    }
    await expect(twilio.send(message)).resolves.toMatchObject({ httpStatus: 201 });
  });
});
