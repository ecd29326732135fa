// Email attachments are downloaded and base64-encoded within ATTACHMENT_BYTES_IN_FLIGHT across the
// isolate: six emails with a 10 MiB attachment each, sent at once through the SendGrid sandbox,
// never hold more than the budget together, and all six are accepted.
import { describe, expect, it } from "vitest";
import { attachmentBudget, ByteBudget, heldBytes } from "../../src/providers/byte-budget";
import { createSendGrid } from "../../src/providers/sendgrid";
import { outbound, sandboxConfig, sandboxUrl, uniqueEmail } from "../helpers/sandbox";

const MiB = 1024 * 1024;

describe("attachment bytes in flight", () => {
  it("six 10 MiB attachments at once stay within a 32 MiB budget and are all sent", async () => {
    const config = sandboxConfig({ ATTACHMENT_BYTES_IN_FLIGHT: String(32 * MiB), PROVIDER_TIMEOUT_MS: "120000" });
    expect(config.ATTACHMENT_BYTES_IN_FLIGHT).toBe(32 * MiB);
    const budget = attachmentBudget(config.ATTACHMENT_BYTES_IN_FLIGHT);
    budget.resetPeak();
    const provider = createSendGrid(config);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        provider.send(
          outbound({
            type: "email",
            to: uniqueEmail(),
            attachments: [`${sandboxUrl()}/__sandbox/files/big-${i}.bin?bytes=${10 * MiB}&type=application/octet-stream`],
          }),
        ),
      ),
    );
    expect(results).toHaveLength(6);
    for (const r of results) expect(r.httpStatus).toBe(202);
    // Each holds 10 MiB + its base64 (23.3 MiB): one at a time fits, two would not.
    expect(budget.peak).toBeGreaterThanOrEqual(heldBytes(10 * MiB));
    expect(budget.peak).toBeLessThanOrEqual(32 * MiB);
    expect(budget.held).toBe(0);
  }, 300_000);

  it("waits in order, grants an oversized request alone, and gives back on abort", async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60);
    let second = false;
    const waiting = budget.acquire(60).then(() => (second = true));
    await Promise.resolve();
    expect(second).toBe(false);
    expect(budget.tryAcquire(10)).toBe(false); // queued behind the waiter: no overtaking
    budget.release(60);
    await waiting;
    expect(budget.held).toBe(60);
    const aborted = new AbortController();
    const blocked = budget.acquire(500, aborted.signal); // clamped to 100: waits for an empty budget
    aborted.abort(new Error("deadline"));
    await expect(blocked).rejects.toThrow("deadline");
    budget.release(60);
    await budget.acquire(500);
    expect(budget.held).toBe(100);
    expect(budget.peak).toBe(100);
  });
});
