// Proves Idempotency-Key semantics (§1.8, §10 cases 30-32): replay, conflict, release on error.
import { describe, expect, it } from "vitest";
import { freshPair, getJson, send, SMS } from "./helpers/fixtures";

const key = () => `k-${crypto.randomUUID()}`;

describe("Idempotency-Key", () => {
  it("replays the stored 201 byte for byte and creates nothing more (case 30)", async () => {
    const k = key();
    // A pair of its own: a count over the whole table stops at the list's total cap once other
    // files have sent 10,000 messages, and then "one more" cannot be seen.
    const pair = freshPair();
    const sentToPair = async () => (await getJson(`/api/v1/messages?to=${encodeURIComponent(pair.to)}&limit=1`)).body.total;
    const request = { ...SMS, ...pair };
    const first = await send(request, { "idempotency-key": k });
    const second = await send({ body: request.body, type: "sms", to: request.to, from: request.from }, { "idempotency-key": k });
    expect(first.res.status).toBe(201);
    expect(second.res.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.res.headers.get("idempotent-replayed")).toBe("true");
    expect(first.res.headers.get("idempotent-replayed")).toBeNull();
    expect(await sentToPair()).toBe(1);
    const other = await send({ ...request, body: "different" }, { "idempotency-key": k });
    expect(other.res.status).toBe(409);
    expect(other.body).toEqual({ error: "conflict", message: "Idempotency-Key was already used with a different request body", details: null });
  });

  it("lets exactly one of two concurrent requests create the message (case 31)", async () => {
    const k = key();
    const body = { ...SMS, body: `concurrent ${k}` };
    const results = await Promise.all([send(body, { "idempotency-key": k }), send(body, { "idempotency-key": k })]);
    const statuses = results.map((r) => r.res.status).sort();
    expect([[201, 201], [201, 409]]).toContainEqual(statuses);
    const conflictResult = results.find((r) => r.res.status === 409);
    if (conflictResult) {
      expect(conflictResult.body.message).toBe("A request with this Idempotency-Key is still being processed");
      expect(conflictResult.res.headers.get("retry-after")).toBe("1");
    } else {
      expect(results[0]!.body.id).toBe(results[1]!.body.id);
    }
    const search = await getJson(`/api/v1/messages?conversation_id=${results.find((r) => r.res.status === 201)!.body.conversation_id}&limit=100`);
    expect(search.body.messages.filter((m: any) => m.body === body.body)).toHaveLength(1);
  });

  it("rejects a malformed key and releases the key after a 4xx (case 32)", async () => {
    const long = await send(SMS, { "idempotency-key": "x".repeat(256) });
    expect(long.res.status).toBe(422);
    expect(long.body.details[0].path).toBe("header.idempotency-key");
    const k = key();
    const invalid = await send({ ...SMS, to: "nope" }, { "idempotency-key": k });
    expect(invalid.res.status).toBe(422);
    const valid = await send(SMS, { "idempotency-key": k });
    expect(valid.res.status).toBe(201);
    const unknownParent = await send({ ...SMS, parent_id: crypto.randomUUID() }, { "idempotency-key": key() });
    expect(unknownParent.res.status).toBe(422);
  });

  it("releases the key when the handler fails after claiming it", async () => {
    const k = key();
    const parent = crypto.randomUUID();
    const failed = await send({ ...SMS, parent_id: parent }, { "idempotency-key": k });
    expect(failed.res.status).toBe(422);
    const retried = await send(SMS, { "idempotency-key": k });
    expect(retried.res.status).toBe(201);
  });
});

describe("Idempotency-Key when its response cannot be stored", () => {
  it("still answers 201 for the durable message, and a retry gets that message again (never a second one)", async () => {
    const { sql } = await import("./helpers/db");
    await sql(`create or replace function test_fail_store() returns trigger as $$
      begin
        if new.key like 'fail-store-%' and new.response_status is not null then raise exception 'injected failure'; end if;
        return new;
      end $$ language plpgsql`);
    await sql(`create trigger test_fail_store before update on idempotency_keys for each row execute function test_fail_store()`);
    try {
      const k = `fail-store-${crypto.randomUUID()}`;
      const body = { ...SMS, body: `store fails ${k}` };
      const first = await send(body, { "idempotency-key": k });
      expect(first.res.status).toBe(201);
      expect((await getJson(`/api/v1/messages/${first.body.id}`)).res.status).toBe(200);
      const retry = await send(body, { "idempotency-key": k });
      expect(retry.res.status).toBe(201);
      expect(retry.res.headers.get("idempotent-replayed")).toBe("true");
      expect(retry.body.id).toBe(first.body.id);
      const list = await getJson(`/api/v1/messages?conversation_id=${first.body.conversation_id}&limit=100`);
      expect(list.body.messages.filter((m: any) => m.body === body.body)).toHaveLength(1);
    } finally {
      await sql("drop trigger if exists test_fail_store on idempotency_keys");
      await sql("drop function if exists test_fail_store()");
    }
  });
});
