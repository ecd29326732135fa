// GET /api/v1/messages/{message_id}/attachments/{n} (issue 15 §4): an inbound message's media as
// copied into R2, streamed with its content type. Authenticated like the rest of the API.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { AppError } from "../errors";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { mediaKey } from "../services/media";
import { messageNotFound } from "../services/messages";
import type { Row } from "../services/representation";
import { uuidValue } from "../validation/common";
import { MESSAGE_NOT_FOUND } from "./messages";

const AttachmentRoute = defineRoute({
  scope: "read",
  method: "get",
  path: "/api/v1/messages/{message_id}/attachments/{n}",
  operationId: "getMessageAttachment",
  summary: "Download an inbound message's attachment (email attachment or MMS media) kept in R2",
  description:
    "The `n`th entry (from 0) of an inbound message's `attachments`. Email attachments are stored when the email arrives; MMS media is copied from Twilio by a worker that retries failed fetches (each try is a `media_fetch` event on the message's timeline), and answers 409 until it is copied.",
  tags: ["messages"],
  request: {
    params: z.object({
      message_id: uuidValue(),
      n: z.coerce.number({ error: "n must be an integer from 0" }).int("n must be an integer from 0").min(0, "n must be an integer from 0").max(99, "n must be at most 99").openapi({ type: "integer", example: 0 }),
    }),
  },
  responses: {
    200: {
      description: "The bytes, with the type they were received with; `Content-Disposition: attachment` (never rendered inline).",
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }), example: "(bytes)" } },
    },
  },
  errors: {
    404: { ...MESSAGE_NOT_FOUND, description: "No message has this id, or it has no such attachment kept by the service." },
    409: {
      description: "The MMS media is not copied yet (it is being fetched or retried), or fetching it failed for good: see the message's `media_fetch` events.",
      example: { error: "attachment_not_available", message: "Attachment 0 is not copied yet; see the message's media_fetch events" },
    },
  },
});

/** Inbound Parse gives file names: quoted for Content-Disposition, with a plain-ASCII fallback. */
function disposition(filename: string | undefined, n: number): string {
  const name = filename && filename.trim() !== "" ? filename : `attachment-${n}`;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function registerAttachmentRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(AttachmentRoute, async (c) => {
    const { message_id: id, n } = c.req.valid("param");
    const object = await c.env.MEDIA.get(mediaKey(id, n));
    if (object) {
      const headers = new Headers({
        "content-type": object.httpMetadata?.contentType ?? "application/octet-stream",
        "content-length": String(object.size),
        "content-disposition": disposition(object.customMetadata?.filename, n),
        "cache-control": "private, max-age=3600",
        etag: object.httpEtag,
      });
      return new Response(object.body, { status: 200, headers }) as never;
    }
    const [row] = await c.get("deps").db().run<Row>(sql`select direction, type, attachments from messages where id = ${id}`);
    if (!row) throw messageNotFound();
    // Only media this service copies has a pending state; other URLs (an outbound message's own) are not ours to serve.
    const entry = ((row.attachments as string[] | null) ?? [])[n];
    const ours = row.direction === "inbound" && entry?.endsWith(`/api/v1/messages/${id}/attachments/${n}`) === true;
    if (!ours) throw new AppError(404, "not_found", "Attachment not found");
    throw new AppError(409, "attachment_not_available", `Attachment ${n} is not copied yet; see the message's media_fetch events`);
  });
}
