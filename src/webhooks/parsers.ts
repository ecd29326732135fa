// Provider payloads (docs/api.md) to typed inputs. These run only after the
// signature has been checked over the raw bytes; every malformed body is a 400 with
// `details` = [{path, message}] (docs/api.md), never a 422 or a 500.
import { badRequest, type FieldIssue } from "../errors";
import { isPlainObject } from "../validation/common";
import { normalizeEmail, normalizeLoose, type Channel } from "../validation/address";
import type { MessageContent } from "../validation/messages";
import { sha256Hex } from "./signatures";
import type { InboundFile } from "../services/media";
import { parseNamedAddress } from "../validation/email";

export type WebhookProvider = "twilio" | "sendgrid";

/** An inbound message, ready to store. `providerMessageId` is also its dedupe key. */
export interface InboundInput extends MessageContent {
  provider: WebhookProvider;
  providerMessageId: string;
}

export interface TwilioStatusInput {
  messageSid: string;
  /** MessageStatus, or SmsStatus when MessageStatus is absent: part of the dedupe key */
  providerStatus: string;
  errorCode: string | null;
  errorMessage: string | null;
  /** our message id from the status-callback URL (docs/api.md); null when absent */
  messageId: string | null;
}

/** Media to copy into R2 (issue 15: Twilio's MediaUrlN, or Inbound Parse's file parts. Kept out of `input`, which is sanitized as text. */
export interface InboundMedia {
  /** MMS: URLs at Twilio, fetched later by the MediaFetcher */
  urls?: { url: string; contentType: string | null }[];
  /** email: the attachments themselves, in their order */
  files?: InboundFile[];
}

export type TwilioPayload = { kind: "inbound_message"; input: InboundInput; media?: InboundMedia } | { kind: "status_callback"; input: TwilioStatusInput };
export type SendgridPayload = { kind: "inbound_message"; input: InboundInput; media?: InboundMedia } | { kind: "events"; elements: unknown[] };

function malformed(issues: FieldIssue[]): never {
  throw badRequest(issues[0]!.message, issues);
}

function fail(path: string, message: string): never {
  malformed([{ path, message }]);
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    fail("body", `Request body must be valid UTF-8 ${what}`);
  }
}

function parseJson(bytes: Uint8Array): unknown {
  const text = decodeUtf8(bytes, "JSON");
  try {
    return JSON.parse(text);
  } catch {
    fail("body", "Request body must be valid JSON");
  }
}

/** `json-` + the first 32 hex digits of SHA-256(raw body): the id of a test payload without one. */
async function bodyDerivedId(bytes: Uint8Array): Promise<string> {
  return `json-${(await sha256Hex(bytes)).slice(0, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Shared field rules for the JSON test formats

function requiredString(body: Record<string, unknown>, key: string, issues: FieldIssue[]): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    issues.push({ path: `body.${key}`, message: "Field required" });
    return undefined;
  }
  if (typeof value !== "string" || value.trim() === "") {
    issues.push({ path: `body.${key}`, message: `${key} must be a non-empty string` });
    return undefined;
  }
  return value;
}

function optionalText(body: Record<string, unknown>, key: string, issues: FieldIssue[]): string | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") {
    issues.push({ path: `body.${key}`, message: `${key} must be a string or null` });
    return null;
  }
  return value;
}

function stringList(body: Record<string, unknown>, key: string, issues: FieldIssue[]): string[] {
  const value = body[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    issues.push({ path: `body.${key}`, message: `${key} must be an array of strings` });
    return [];
  }
  return value as string[];
}

/** A provider id from a test payload: a string or number is used as given, absent means derived. */
function testPayloadId(body: Record<string, unknown>, key: string, issues: FieldIssue[]): string | null {
  const value = body[key];
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  issues.push({ path: `body.${key}`, message: `${key} must be a string` });
  return null;
}

function timestampMetadata(body: Record<string, unknown>): Record<string, unknown> {
  return typeof body.timestamp === "string" ? { timestamp: body.timestamp } : {};
}

// ---------------------------------------------------------------------------------------------
// Twilio (docs/api.md)

const INBOUND_STATUSES = new Set(["received", "receiving"]);
const NON_NEGATIVE_INTEGER = /^\d+$/;

function formFields(bytes: Uint8Array): Map<string, string> {
  const fields = new Map<string, string>();
  // First value wins: Twilio never repeats these names, and a repeat must not override silently.
  for (const [name, value] of new URLSearchParams(decodeUtf8(bytes, "form data"))) {
    if (!fields.has(name)) fields.set(name, value);
  }
  return fields;
}

const present = (value: string | undefined): value is string => value !== undefined && value.trim() !== "";

export function parseTwilioForm(bytes: Uint8Array, queryMessageId: string | null, region: string): TwilioPayload {
  const fields = formFields(bytes);
  const status = [fields.get("MessageStatus"), fields.get("SmsStatus")].find(present);
  const sid = fields.get("MessageSid");

  if (status !== undefined && !INBOUND_STATUSES.has(status.trim().toLowerCase())) {
    if (!present(sid)) fail("body.MessageSid", "Field required");
    return {
      kind: "status_callback",
      input: {
        messageSid: sid.trim(),
        providerStatus: status.trim(),
        errorCode: present(fields.get("ErrorCode")) ? fields.get("ErrorCode")!.trim() : null,
        errorMessage: present(fields.get("ErrorMessage")) ? fields.get("ErrorMessage")! : null,
        messageId: queryMessageId,
      },
    };
  }

  const issues: FieldIssue[] = [];
  for (const name of ["MessageSid", "From", "To"]) {
    if (!present(fields.get(name))) issues.push({ path: `body.${name}`, message: "Field required" });
  }
  const numMediaText = fields.get("NumMedia")?.trim();
  let numMedia = 0;
  if (numMediaText !== undefined && numMediaText !== "") {
    if (!NON_NEGATIVE_INTEGER.test(numMediaText)) issues.push({ path: "body.NumMedia", message: "NumMedia must be a non-negative integer" });
    else numMedia = Number(numMediaText);
  }
  if (issues.length) malformed(issues);

  const attachments: string[] = [];
  const contentTypes: string[] = [];
  // Twilio allows at most 10 media per message; the cap keeps a hostile NumMedia from looping.
  for (let n = 0; n < Math.min(numMedia, 100); n++) {
    const url = fields.get(`MediaUrl${n}`);
    if (!present(url)) continue;
    attachments.push(url.trim());
    contentTypes.push(fields.get(`MediaContentType${n}`) ?? "");
  }
  return {
    kind: "inbound_message",
    media: { urls: attachments.map((url, i) => ({ url, contentType: contentTypes[i] || null })) },
    input: {
      provider: "twilio",
      providerMessageId: sid!.trim(),
      type: numMedia > 0 ? "mms" : "sms",
      from: normalizeLoose(fields.get("From")!, region),
      to: normalizeLoose(fields.get("To")!, region),
      body: fields.get("Body") ?? "",
      attachments,
      metadata: numMedia > 0 ? { media_content_types: contentTypes } : {},
    },
  };
}

export async function parseTwilioJson(bytes: Uint8Array, region: string): Promise<TwilioPayload> {
  const body = parseJson(bytes);
  if (!isPlainObject(body)) fail("body", "Request body must be a JSON object");
  const issues: FieldIssue[] = [];
  const id = testPayloadId(body, "messaging_provider_id", issues);
  const from = requiredString(body, "from", issues);
  const to = requiredString(body, "to", issues);
  let type: Channel | undefined;
  if (body.type !== undefined && body.type !== null) {
    if (body.type === "sms" || body.type === "mms") type = body.type;
    else issues.push({ path: "body.type", message: "type must be sms or mms" });
  }
  const text = optionalText(body, "body", issues);
  const attachments = stringList(body, "attachments", issues);
  if (issues.length) malformed(issues);
  return {
    kind: "inbound_message",
    input: {
      provider: "twilio",
      providerMessageId: id ?? (await bodyDerivedId(bytes)),
      type: type ?? (attachments.length > 0 ? "mms" : "sms"),
      from: normalizeLoose(from!, region),
      to: normalizeLoose(to!, region),
      body: text,
      attachments,
      metadata: timestampMetadata(body),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// SendGrid (docs/api.md)

/** Splits an address list on commas outside quotes and angle brackets. */
function splitAddressList(value: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === "\\" && quoted && i + 1 < value.length) {
      current += ch + value[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "<") angle++;
    else if (!quoted && ch === ">") angle = Math.max(0, angle - 1);
    if (ch === "," && !quoted && angle === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/** `Name <addr>` → addr, domain lower-cased; the first of a list; a bare address as it is. */
export function extractEmailAddress(value: string): string {
  const first = splitAddressList(value)[0] ?? "";
  const angle = first.match(/<([^<>]*)>\s*$/);
  const address = (angle ? angle[1]! : first).trim();
  const normalized = normalizeEmail(address);
  if (normalized) return normalized;
  // Not a well-formed address (a provider quirk): keep it, but the domain rule still applies.
  const at = address.lastIndexOf("@");
  return at > 0 ? `${address.slice(0, at)}@${address.slice(at + 1).toLowerCase()}` : address;
}

function sendgridTestFormat(body: Record<string, unknown>, derivedId: string): InboundInput {
  const issues: FieldIssue[] = [];
  const id = testPayloadId(body, "xillio_id", issues);
  const from = requiredString(body, "from", issues);
  const to = requiredString(body, "to", issues);
  const text = optionalText(body, "body", issues);
  const attachments = stringList(body, "attachments", issues);
  if (issues.length) malformed(issues);
  const fromAddress = extractEmailAddress(from!);
  const toAddress = extractEmailAddress(to!);
  if (!fromAddress) fail("body.from", "from must contain an address");
  if (!toAddress) fail("body.to", "to must contain an address");
  return {
    provider: "sendgrid",
    providerMessageId: id ?? derivedId,
    type: "email",
    from: fromAddress,
    to: toAddress,
    body: text,
    attachments,
    metadata: timestampMetadata(body),
  };
}

export async function parseSendgridJson(bytes: Uint8Array): Promise<SendgridPayload> {
  const body = parseJson(bytes);
  if (Array.isArray(body)) return { kind: "events", elements: body };
  if (!isPlainObject(body)) fail("body", "Request body must be a JSON array or object");
  return { kind: "inbound_message", input: sendgridTestFormat(body, await bodyDerivedId(bytes)) };
}

/** The Message-ID header of a raw header block (folded lines unfolded), or null. */
export function messageIdHeader(rawHeaders: string): string | null {
  const unfolded = rawHeaders.replace(/\r?\n[ \t]+/g, " ");
  for (const line of unfolded.split(/\r?\n/)) {
    const match = line.match(/^message-id\s*:\s*(.*)$/i);
    if (match && match[1]!.trim() !== "") return match[1]!.trim();
  }
  return null;
}

/** Inbound Parse's file parts (attachment1..N), in their order, with the names and types attachment-info gives. */
async function fileParts(form: FormData): Promise<InboundFile[]> {
  let info: Record<string, { filename?: unknown; type?: unknown }> = {};
  const rawInfo = form.get("attachment-info");
  if (typeof rawInfo === "string") {
    try {
      const parsed = JSON.parse(rawInfo) as unknown;
      if (isPlainObject(parsed)) info = parsed as typeof info;
    } catch {
      // a malformed attachment-info only loses the names
    }
  }
  const parts: { index: number; name: string; file: File }[] = [];
  for (const [name, value] of form.entries()) {
    if (typeof value === "string") continue;
    const index = /^attachment(\d+)$/.exec(name);
    parts.push({ index: index ? Number(index[1]) : Number.MAX_SAFE_INTEGER, name, file: value as File });
  }
  parts.sort((a, b) => a.index - b.index);
  const files: InboundFile[] = [];
  for (const { name, file } of parts.slice(0, 100)) {
    const described = isPlainObject(info[name]) ? info[name] : {};
    const filename = typeof described.filename === "string" && described.filename !== "" ? described.filename : file.name || name;
    const type = typeof described.type === "string" && described.type !== "" ? described.type : file.type || "application/octet-stream";
    // The part itself, not a copy of its bytes: a 30 MB post must not hold the attachment twice.
    files.push({ filename, contentType: type, content: file });
  }
  return files;
}

export async function parseInboundParse(bytes: Uint8Array, contentType: string): Promise<SendgridPayload> {
  let form: FormData;
  try {
    form = await new Request("http://inbound-parse.invalid/", { method: "POST", headers: { "content-type": contentType }, body: bytes }).formData();
  } catch {
    fail("body", "Request body must be valid multipart/form-data");
  }
  const field = (name: string): string | undefined => {
    const value = form.get(name);
    return typeof value === "string" ? value : undefined;
  };
  const issues: FieldIssue[] = [];
  const from = field("from");
  const to = field("to");
  const fromAddress = from === undefined ? "" : extractEmailAddress(from);
  const toAddress = to === undefined ? "" : extractEmailAddress(to);
  if (!fromAddress) issues.push({ path: "body.from", message: "Field required" });
  if (!toAddress) issues.push({ path: "body.to", message: "Field required" });
  if (issues.length) malformed(issues);

  const subject = field("subject");
  const text = field("text") ?? "";
  const html = field("html") ?? "";
  const count = field("attachments")?.trim();
  const messageId = messageIdHeader(field("headers") ?? "");
  const key =
    messageId ?? `parse-${(await sha256Hex(new TextEncoder().encode(`${from}\n${to}\n${subject ?? ""}\n${text}`))).slice(0, 32)}`;
  const metadata: Record<string, unknown> = { attachment_count: count && NON_NEGATIVE_INTEGER.test(count) ? Number(count) : 0 };
  if (subject !== undefined) metadata.subject = subject;
  const files = await fileParts(form);
  const named = from === undefined ? null : parseNamedAddress(splitAddressList(from)[0] ?? "");
  const cc = splitAddressList(field("cc") ?? "")
    .map((entry) => parseNamedAddress(entry)?.address)
    .filter((a): a is string => a !== undefined);
  return {
    kind: "inbound_message",
    media: { files },
    input: {
      email: { subject: subject ?? null, html: html !== "" ? html : null, from_name: named?.name ?? null, reply_to: null, cc, bcc: [] },
      provider: "sendgrid",
      providerMessageId: key,
      type: "email",
      from: fromAddress,
      to: toAddress,
      body: text !== "" ? text : html,
      attachments: [],
      metadata,
    },
  };
}
