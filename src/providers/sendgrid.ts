// SendGrid v3 Mail Send over fetch. Our message id travels in custom_args so that Event Webhook
// events match the message even before X-Message-Id is stored (docs/api.md). Attachments
// are fetched from their URLs, capped in total size, and sent inline as base64. SendGrid offers
// no cheap way to ask whether a mail was accepted, so there is no lookup: an ambiguous attempt is
// retried (or failed) as AMBIGUOUS_SEND_POLICY says.
import type { Config } from "../config";
import { attachmentBudget, heldBytes, type ByteBudget } from "./byte-budget";
import { base64, callProvider, parseJson, retryAfterSeconds, type HttpAnswer } from "./http";
import { ProviderError, type OutboundMessage, type Provider, type SendResult } from "./types";

interface Attachment {
  content: string;
  filename: string;
  type: string;
  disposition: "attachment";
}

/** A body with an HTML tag in it goes as text/html, anything else (even "<me@example.com>") as text/plain. */
export function looksLikeHtml(body: string): boolean {
  return /<[a-z][a-z0-9]*(?:\s[^<>]*)?\/?>|<\/[a-z][a-z0-9]*\s*>|<!doctype html/i.test(body);
}

const nonEmpty = (value: unknown): string | null => (typeof value === "string" && value.trim() !== "" ? value : null);

/**
 * The Mail Send body (sendgrid-oai mail_send.json): one personalization with to, cc and bcc and our
 * id in custom_args; from {email, name}; reply_to; the subject (first class, else metadata.subject
 * for older clients, else SENDGRID_DEFAULT_SUBJECT); content text/plain then text/html, the order
 * SendGrid requires.
 */
export function mailSendBody(config: Config, message: OutboundMessage, attachments: Attachment[]): Record<string, unknown> {
  const email = message.email ?? null;
  const subject = nonEmpty(email?.subject) ?? nonEmpty(message.metadata.subject) ?? config.SENDGRID_DEFAULT_SUBJECT;
  const body = message.body ?? "";
  const personalization: Record<string, unknown> = { to: [{ email: message.to }] };
  if (email && email.cc.length > 0) personalization.cc = email.cc.map((address) => ({ email: address }));
  if (email && email.bcc.length > 0) personalization.bcc = email.bcc.map((address) => ({ email: address }));
  personalization.custom_args = { message_id: message.id };
  let content: { type: string; value: string }[];
  if (email?.html) {
    content = body === "" ? [] : [{ type: "text/plain", value: body }];
    content.push({ type: "text/html", value: email.html });
  } else {
    // SendGrid refuses an empty content value; a mail of attachments alone gets a single space.
    content = [{ type: looksLikeHtml(body) ? "text/html" : "text/plain", value: body === "" ? " " : body }];
  }
  const mail: Record<string, unknown> = {
    personalizations: [personalization],
    from: email?.from_name ? { email: message.from, name: email.from_name } : { email: message.from },
    subject,
    content,
  };
  if (email?.reply_to) mail.reply_to = { email: email.reply_to };
  if (attachments.length > 0) mail.attachments = attachments;
  return mail;
}

/** SendGrid's answer to a non-2xx: 429 and 5xx are retried, 401/403 are ours, any other 4xx is permanent. */
export function sendgridError(answer: HttpAnswer): ProviderError {
  const json = parseJson(answer.text) as { errors?: { message?: unknown; field?: unknown }[] } | undefined;
  const details = (Array.isArray(json?.errors) ? json.errors : [])
    .map((e) => (typeof e?.message === "string" ? (typeof e.field === "string" && e.field ? `${e.message} (${e.field})` : e.message) : null))
    .filter((m): m is string => m !== null);
  const message = details.length > 0 ? details.join("; ") : `SendGrid answered HTTP ${answer.status}`;
  const opts = { httpStatus: answer.status };
  if (answer.status === 429) return new ProviderError("rate_limited", "too_many_requests", message, { ...opts, retryAfter: retryAfterSeconds(answer.headers) });
  if (answer.status >= 500) return new ProviderError("transient", "server_error", message, opts);
  // A revoked key (401) or one without the mail.send permission (403) fails every mail alike.
  if (answer.status === 401) return new ProviderError("credentials", "unauthorized", message, opts);
  if (answer.status === 403) return new ProviderError("credentials", "forbidden", message, opts);
  const codes: Record<number, string> = { 400: "bad_request", 413: "payload_too_large" };
  return new ProviderError("permanent", codes[answer.status] ?? `http_${answer.status}`, message, opts);
}

/**
 * Downloads every attachment within one deadline and one total size cap. Nothing has reached
 * SendGrid yet, so failures here are never ambiguous: a missing file or one over the cap is
 * permanent, a slow or failing server is worth another attempt.
 */
export async function fetchAttachments(
  urls: string[],
  maxTotalBytes: number,
  timeoutMs: number,
  budget?: ByteBudget,
): Promise<{ attachments: Attachment[]; release: () => void }> {
  let held = 0;
  const release = () => {
    budget?.release(held);
    held = 0;
  };
  try {
    return { attachments: await download(urls, maxTotalBytes, timeoutMs, budget, (n) => (held += n)), release };
  } catch (error) {
    release();
    throw error;
  }
}

async function download(urls: string[], maxTotalBytes: number, timeoutMs: number, budget: ByteBudget | undefined, hold: (bytes: number) => void): Promise<Attachment[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  const out: Attachment[] = [];
  let total = 0;
  let heldSoFar = 0;
  for (const [index, url] of urls.entries()) {
    let res: Response;
    try {
      res = await fetch(url, { signal });
    } catch (error) {
      throw new ProviderError("transient", "attachment_unavailable", `Attachment ${url} could not be fetched: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      throw new ProviderError(retryable ? "transient" : "permanent", "attachment_unavailable", `Attachment ${url} answered HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && total + declared > maxTotalBytes) {
      await res.body?.cancel();
      throw tooLarge(maxTotalBytes);
    }
    // Reserve what this attachment will hold (its declared size, else what the cap still allows)
    // before reading it. Holding part of the budget already, a send does not wait for more: it
    // gives everything back and is retried, so that two sends never wait on each other.
    if (budget) {
      const want = budget.clamp(heldBytes(Number.isFinite(declared) ? declared : maxTotalBytes - total));
      const fits = heldSoFar > 0 ? budget.tryAcquire(want) : await budget.acquire(want, signal).then(() => true, () => false);
      if (!fits) {
        await res.body?.cancel();
        throw new ProviderError("transient", "attachment_budget", `Attachments of this email do not fit into ATTACHMENT_BYTES_IN_FLIGHT (${budget.limit} bytes) now`);
      }
      hold(want);
      heldSoFar += want;
    }
    const chunks: Uint8Array[] = [];
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxTotalBytes) {
          await reader.cancel();
          throw tooLarge(maxTotalBytes);
        }
        chunks.push(value);
      }
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      throw new ProviderError("transient", "attachment_unavailable", `Attachment ${url} could not be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    out.push({
      content: base64(bytes),
      filename: attachmentName(url, res.headers.get("content-disposition"), index),
      type: (res.headers.get("content-type") ?? "application/octet-stream").split(";")[0]!.trim() || "application/octet-stream",
      disposition: "attachment",
    });
  }
  return out;
}

function tooLarge(maxTotalBytes: number): ProviderError {
  return new ProviderError("permanent", "attachments_too_large", `Attachments exceed ${maxTotalBytes} bytes in total`);
}

/** The server's filename, else the last path segment of the URL, else attachment-N. */
export function attachmentName(url: string, disposition: string | null, index: number): string {
  const quoted = disposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition) : null;
  if (quoted?.[1]) {
    try {
      return decodeURIComponent(quoted[1]);
    } catch {
      return quoted[1];
    }
  }
  try {
    const last = new URL(url).pathname.split("/").filter(Boolean).pop();
    if (last) return decodeURIComponent(last);
  } catch {
    // fall through
  }
  return `attachment-${index + 1}`;
}

export function createSendGrid(config: Config): Provider {
  const sendUrl = `${config.SENDGRID_API_BASE_URL.replace(/\/+$/, "")}/v3/mail/send`;
  return {
    name: "sendgrid",
    mode: "live",
    async send(message: OutboundMessage): Promise<SendResult> {
      if (!config.SENDGRID_API_KEY) throw new ProviderError("credentials", "not_configured", "SENDGRID_API_KEY is not configured");
      const budget = message.attachments.length > 0 ? attachmentBudget(config.ATTACHMENT_BYTES_IN_FLIGHT) : undefined;
      const { attachments, release } = await fetchAttachments(message.attachments, config.SENDGRID_MAX_ATTACHMENT_BYTES, config.PROVIDER_TIMEOUT_MS, budget);
      let answer: HttpAnswer;
      try {
        answer = await callProvider(
          sendUrl,
          {
            method: "POST",
            headers: { authorization: `Bearer ${config.SENDGRID_API_KEY}`, "content-type": "application/json" },
            body: JSON.stringify(mailSendBody(config, message, attachments)),
          },
          config.PROVIDER_TIMEOUT_MS,
        );
      } finally {
        // The request body and the attachments are garbage once the call is over.
        release();
      }
      if (answer.status < 200 || answer.status > 299) throw sendgridError(answer);
      // SendGrid always sends X-Message-Id with its 202; without it the mail is still accepted, and
      // events still match on our custom_args message_id, so our own id stands in.
      const providerMessageId = answer.headers.get("x-message-id") ?? message.id;
      return { providerMessageId, providerStatus: "accepted", httpStatus: answer.status };
    },
  };
}
