// Proves the retry delay formula of docs/api.md: exponential, capped, ±20 % jitter, and
// never sooner than the provider's Retry-After.
import { describe, expect, it } from "vitest";
import { backoffSeconds } from "../../src/queue/backoff";

const settings = { baseSeconds: 30, maxSeconds: 3600 };

describe("backoffSeconds", () => {
  it("doubles per attempt within the jitter bounds", () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const nominal = 30 * 2 ** (attempt - 1);
      for (let i = 0; i < 200; i++) {
        const delay = backoffSeconds(attempt, settings);
        expect(delay).toBeGreaterThanOrEqual(nominal * 0.8);
        expect(delay).toBeLessThanOrEqual(nominal * 1.2);
      }
    }
  });

  it("uses the whole jitter range", () => {
    expect(backoffSeconds(1, settings, undefined, () => 0)).toBe(24);
    expect(backoffSeconds(1, settings, undefined, () => 1)).toBeCloseTo(36, 9);
  });

  it("caps the exponential part at the maximum", () => {
    expect(backoffSeconds(20, settings, undefined, () => 0.5)).toBe(3600);
  });

  it("never schedules sooner than Retry-After", () => {
    expect(backoffSeconds(1, settings, 120, () => 0)).toBe(120);
    expect(backoffSeconds(1, settings, 5, () => 0)).toBe(24);
  });
});
