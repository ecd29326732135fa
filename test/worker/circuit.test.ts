// Our faults and the provider's bad day are not the messages': refused credentials and a
// provider-wide outage pause the provider (a circuit breaker per shard) instead of spending
// attempts, the pause is visible in the queue stats and /ready, and once the provider is back every
// waiting message is sent exactly once, with no restart. The test settings probe an open circuit
// after 0.2 s, doubling to 2 s, with QUEUE_MAX_ATTEMPTS=3 (vitest.config.ts).
import { afterEach, describe, expect, it } from "vitest";
import { getJson, send, SMS } from "../helpers/fixtures";
import { acceptedTwilioMessages, fault, setCredentials, uniquePhone } from "../helpers/sandbox";
import { drainAll, settle, waitFor } from "../helpers/worker";

afterEach(async () => {
  await setCredentials({ twilio: "valid", sendgrid: "valid" });
  await fault("", []);
});

async function sendMany(n: number) {
  const recipients = Array.from({ length: n }, () => uniquePhone());
  const ids: string[] = [];
  for (const to of recipients) ids.push((await send({ ...SMS, to })).body.id);
  return { recipients, ids };
}

const stats = async () => (await getJson("/api/v1/queue/stats")).body;
const ready = async () => (await getJson("/ready")).body;

describe("circuit breaker", () => {
  it("credentials refused for every call: no message fails, the pause shows in queue stats and /ready, and once fixed each is sent once", async () => {
    await setCredentials({ twilio: "revoked" });
    const { recipients, ids } = await sendMany(3);
    await drainAll("sms");
    const paused = await waitFor(stats, (s) => s.queues.sms.circuit?.state === "open");
    expect(paused.queues.sms.circuit).toMatchObject({ state: "open", reason: "credentials", last_error: expect.stringContaining("20003") });
    const readiness = await ready();
    expect(readiness.ready).toBe(true); // sends are still accepted; they wait in their queue
    expect(readiness.checks.providers.twilio).toMatchObject({ status: "paused", circuit: { state: "open", reason: "credentials" } });
    for (const id of ids) {
      const m = (await getJson(`/api/v1/messages/${id}`)).body;
      expect(m.status).not.toBe("failed");
      expect(m.attempts).toBe(0);
    }

    await setCredentials({ twilio: "valid" });
    for (const id of ids) expect((await settle(id, (m) => m.status === "sent" || m.status === "failed")).status).toBe("sent");
    for (const to of recipients) expect(await acceptedTwilioMessages(to)).toHaveLength(1);
    expect((await waitFor(stats, (s) => s.queues.sms.circuit?.state === "closed")).queues.sms.circuit.state).toBe("closed");
  });

  it("a provider-wide outage much longer than the whole retry schedule (500 for 20 s, QUEUE_MAX_ATTEMPTS=3): nothing fails, all are sent once after it", async () => {
    await fault("", ["500"]);
    const { recipients, ids } = await sendMany(8);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      await drainAll("sms");
      await new Promise((r) => setTimeout(r, 500));
    }
    const during = await stats();
    expect(during.queues.sms.circuit).toMatchObject({ state: expect.stringMatching(/open|half_open/), reason: "outage" });
    const statuses = await Promise.all(ids.map(async (id) => (await getJson(`/api/v1/messages/${id}`)).body));
    expect(statuses.filter((m) => m.status === "failed")).toEqual([]);
    // Only the failures before the circuit opened count: at most one attempt each.
    for (const m of statuses) expect(m.attempts).toBeLessThanOrEqual(1);

    await fault("", []);
    for (const id of ids) expect((await settle(id, (m) => m.status === "sent" || m.status === "failed")).status).toBe("sent");
    for (const to of recipients) expect(await acceptedTwilioMessages(to)).toHaveLength(1);
  });
});
