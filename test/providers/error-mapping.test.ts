// How provider answers map onto error classes (docs/api.md, docs/architecture.md invariant 5): each row
// programs the sandbox with one answer for a fresh recipient and checks the ProviderError the live
// client throws.
import { describe, expect, it } from "vitest";
import { retryAfterSeconds } from "../../src/providers/http";
import { createSendGrid } from "../../src/providers/sendgrid";
import { createTwilio } from "../../src/providers/twilio";
import type { ErrorClass } from "../../src/providers/types";
import { DEAD_URL } from "../helpers/http";
import { outbound, programme, received, rejection, sandboxConfig, uniqueEmail, uniquePhone } from "../helpers/sandbox";
import type { OutcomeSpec } from "../../dev/sandbox/api";

interface Row {
  answer: string;
  outcome: OutcomeSpec;
  errorClass: ErrorClass;
  code: string;
  httpStatus?: number;
  retryAfter?: number | [number, number];
  ambiguous?: boolean;
  message?: string;
}

const twilioRows: Row[] = [
  { answer: "HTTP 429 with Retry-After: 7", outcome: "429:7", errorClass: "rate_limited", code: "20429", httpStatus: 429, retryAfter: 7 },
  { answer: "Twilio 20429 without Retry-After", outcome: "20429", errorClass: "rate_limited", code: "20429", httpStatus: 429 },
  { answer: "21211 invalid To", outcome: "21211", errorClass: "permanent", code: "21211", httpStatus: 400, message: "Invalid 'To' Phone Number" },
  { answer: "21610 unsubscribed recipient", outcome: "21610", errorClass: "permanent", code: "21610", httpStatus: 400, message: "Attempt to send to unsubscribed recipient" },
  { answer: "21614 not a mobile number", outcome: "21614", errorClass: "permanent", code: "21614", httpStatus: 400 },
  { answer: "21408 region not enabled", outcome: "21408", errorClass: "permanent", code: "21408", httpStatus: 400 },
  { answer: "20003 bad credentials (401): ours, not the message's", outcome: "20003", errorClass: "credentials", code: "20003", httpStatus: 401 },
  { answer: "HTTP 500", outcome: "500", errorClass: "transient", code: "20500", httpStatus: 500 },
  { answer: "HTTP 503", outcome: "503", errorClass: "transient", code: "20503", httpStatus: 503 },
  { answer: "HTTP 502 with an HTML body from a proxy", outcome: { status: 502, body: "<html>Bad Gateway</html>" }, errorClass: "transient", code: "http_502", httpStatus: 502, message: "Twilio answered HTTP 502" },
  { answer: "201 without a message sid", outcome: { status: 201, body: "<html>?</html>" }, errorClass: "timeout", code: "invalid_response", httpStatus: 201, ambiguous: true },
  { answer: "connection reset before an answer", outcome: "reset", errorClass: "timeout", code: "connection_lost", ambiguous: true },
  { answer: "accepted, then connection reset", outcome: "accept-then-reset", errorClass: "timeout", code: "connection_lost", ambiguous: true },
  { answer: "no answer within PROVIDER_TIMEOUT_MS", outcome: "hang", errorClass: "timeout", code: "timeout", ambiguous: true },
];

const sendgridRows: Row[] = [
  { answer: "HTTP 429 with X-RateLimit-Reset 30 s ahead", outcome: "429:30", errorClass: "rate_limited", code: "too_many_requests", httpStatus: 429, retryAfter: [29, 31], message: "too many requests" },
  { answer: "HTTP 500", outcome: "500", errorClass: "transient", code: "server_error", httpStatus: 500 },
  { answer: "HTTP 503", outcome: "503", errorClass: "transient", code: "server_error", httpStatus: 503 },
  { answer: "HTTP 400 validation error", outcome: { status: 400, message: "The from email does not contain a valid address." }, errorClass: "permanent", code: "bad_request", httpStatus: 400, message: "The from email does not contain a valid address." },
  { answer: "HTTP 401 bad API key: ours, not the message's", outcome: "401", errorClass: "credentials", code: "unauthorized", httpStatus: 401 },
  { answer: "HTTP 403 unverified sender: ours, not the message's", outcome: "403", errorClass: "credentials", code: "forbidden", httpStatus: 403 },
  { answer: "HTTP 413 payload too large", outcome: "413", errorClass: "permanent", code: "payload_too_large", httpStatus: 413 },
  { answer: "accepted, then no answer", outcome: "accept-then-hang", errorClass: "timeout", code: "timeout", ambiguous: true },
];

function check(error: Awaited<ReturnType<typeof rejection>>, row: Row) {
  expect(error.name).toBe("ProviderError");
  expect(error.errorClass).toBe(row.errorClass);
  expect(error.code).toBe(row.code);
  expect(error.opts.httpStatus).toBe(row.httpStatus);
  expect(error.opts.ambiguous ?? false).toBe(row.ambiguous ?? false);
  if (Array.isArray(row.retryAfter)) {
    expect(error.opts.retryAfter).toBeGreaterThanOrEqual(row.retryAfter[0]);
    expect(error.opts.retryAfter).toBeLessThanOrEqual(row.retryAfter[1]);
  } else {
    expect(error.opts.retryAfter).toBe(row.retryAfter);
  }
  if (row.message) expect(error.message).toBe(row.message);
}

// Short enough for the hang rows, long enough for a local round trip.
const TIMEOUT = { PROVIDER_TIMEOUT_MS: "300" };

describe("Twilio answers → error classes", () => {
  it.each(twilioRows)("maps $answer to $errorClass / $code", async (row) => {
    const to = uniquePhone();
    await programme(to, [row.outcome]);
    const error = await rejection(createTwilio(sandboxConfig(TIMEOUT)).send(outbound({ type: "sms", to })));
    check(error, row);
    expect(await received(to)).toHaveLength(1);
  });

  it("maps a refused connection to an ambiguous timeout: workerd reports it exactly like a reset after sending", async () => {
    const error = await rejection(createTwilio(sandboxConfig({ TWILIO_API_BASE_URL: DEAD_URL })).send(outbound({ type: "sms", to: uniquePhone() })));
    check(error, { answer: "refused", outcome: "ok", errorClass: "timeout", code: "connection_lost", ambiguous: true });
  });
});

describe("SendGrid answers → error classes", () => {
  it.each(sendgridRows)("maps $answer to $errorClass / $code", async (row) => {
    const to = uniqueEmail();
    await programme(to, [row.outcome]);
    const error = await rejection(createSendGrid(sandboxConfig(TIMEOUT)).send(outbound({ type: "email", to })));
    check(error, row);
    expect(await received(to)).toHaveLength(1);
  });
});

describe("Retry-After parsing", () => {
  it("reads seconds, an HTTP date, or SendGrid's X-RateLimit-Reset timestamp, and ignores garbage", () => {
    const now = Date.parse("2025-01-15T10:30:00Z");
    expect(retryAfterSeconds(new Headers({ "retry-after": "12" }), now)).toBe(12);
    expect(retryAfterSeconds(new Headers({ "retry-after": "Wed, 15 Jan 2025 10:30:45 GMT" }), now)).toBe(45);
    expect(retryAfterSeconds(new Headers({ "x-ratelimit-reset": String(now / 1000 + 20) }), now)).toBe(20);
    expect(retryAfterSeconds(new Headers({ "x-ratelimit-reset": String(now / 1000 - 5) }), now)).toBe(1);
    expect(retryAfterSeconds(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(retryAfterSeconds(new Headers(), now)).toBeUndefined();
  });
});
