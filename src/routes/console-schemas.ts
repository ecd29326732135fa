// The schemas of the operator console's routes (insights, redrive by code). Kept apart from
// schemas.ts, with the same conventions.
import { z } from "@hono/zod-openapi";
import { MESSAGE_TYPES } from "../db/schema";

const MESSAGE_ID = "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f";
const AT = "2025-01-15T10:30:00.123Z";
const Id = z.guid().openapi({ example: MESSAGE_ID });
const Timestamp = z.iso.datetime().openapi({ example: AT });
const Count = z.int().min(0);

export const Timeseries = z
  .object({
    generated_at: Timestamp,
    minutes: z.int().min(1),
    points: z.array(
      z.object({
        minute: Timestamp,
        created: Count,
        sent: Count,
        failed: Count,
        inbound: Count,
        latency_p50_ms: z.int().min(0).nullable().openapi({ description: "Median time from creation to sent of the minute's messages; null if none was sent." }),
        latency_p95_ms: z.int().min(0).nullable(),
      }),
    ),
    truncated: z.boolean().openapi({ description: "The row cap was reached: the oldest minutes are undercounted." }),
  })
  .openapi("Timeseries", {
    example: {
      generated_at: AT,
      minutes: 60,
      points: [{ minute: AT, created: 42, sent: 41, failed: 1, inbound: 3, latency_p50_ms: 180, latency_p95_ms: 950 }],
      truncated: false,
    },
  });

export const FailureGroups = z
  .object({
    generated_at: Timestamp,
    minutes: z.int().min(1),
    codes: z.array(
      z.object({
        code: z.string().openapi({ description: "The provider's error code; empty when it gave none.", example: "21211" }),
        failures: Count,
        dead_letters: Count,
        error_class: z.string().nullable().openapi({ example: "permanent" }),
        message: z.string().nullable().openapi({ example: "Invalid 'To' Phone Number" }),
        types: z.array(z.enum(MESSAGE_TYPES)),
        last_failed_at: Timestamp.nullable(),
      }),
    ),
    truncated: z.boolean(),
  })
  .openapi("FailureGroups", {
    example: {
      generated_at: AT,
      minutes: 60,
      codes: [{ code: "21211", failures: 3, dead_letters: 3, error_class: "permanent", message: "Invalid 'To' Phone Number", types: ["sms"], last_failed_at: AT }],
      truncated: false,
    },
  });

export const RedriveByCodeBody = z
  .object({
    code: z.string().max(64).openapi({ description: "The error code of the dead letters to redrive; empty for those without one.", example: "21211" }),
    type: z.enum(MESSAGE_TYPES).optional().openapi({ description: "Only dead letters of this message type." }),
    limit: z.int().min(1).max(200).default(100).openapi({ description: "At most this many in one call (1-200); call again while `remaining` > 0." }),
  })
  .strict()
  .openapi("RedriveByCode");

export const RedriveByCodeResult = z
  .object({
    code: z.string(),
    redriven: z.array(Id).openapi({ description: "The messages put back to pending, queued (or sent inline in sync mode)." }),
    remaining: Count.openapi({ description: "Dead letters of the code still there (beyond the limit, or left when the deadline came)." }),
  })
  .openapi("RedriveByCodeResult", { example: { code: "21211", redriven: [MESSAGE_ID], remaining: 0 } });
