// The send request (API-CONTRACT §3.1): rules checked in the table's field order, with the exact
// messages of the contract.
import { MESSAGE_TYPES } from "../db/schema";
import { type Channel, normalizeAddress } from "./address";
import { checkMetadata, has, Issues, UUID, utf8Length } from "./common";

export const SMS_BODY_MAX_CHARS = 1600;
export const EMAIL_BODY_MAX_BYTES = 102_400;
export const MAX_ATTACHMENTS = 10;
const MAX_URL_LENGTH = 2048;

/** What every message carries, whichever way it travels (send, provider call, inbound webhook). */
export interface MessageContent {
  type: Channel;
  from: string;
  to: string;
  body: string | null;
  attachments: string[];
  metadata: Record<string, unknown>;
}

export interface SendInput extends MessageContent {
  parentId: string | null;
  conversationType: "direct" | "thread";
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== "string" || value.length > MAX_URL_LENGTH || !URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0;
}

function checkAddress(body: Record<string, unknown>, key: "to" | "from", type: Channel | undefined, region: string, issues: Issues): string | undefined {
  const path = `body.${key}`;
  if (!has(body, key)) {
    issues.add(path, "Field required");
    return undefined;
  }
  const value = body[key];
  const who = key === "to" ? "Recipient" : "Sender";
  if (!type) {
    if (typeof value !== "string") issues.add(path, "Expected string");
    return undefined;
  }
  const normalized = typeof value === "string" ? normalizeAddress(type, value, region) : null;
  if (normalized === null) {
    issues.add(path, type === "email" ? `${who} must be a valid email address` : `${who} must be a valid phone number for SMS/MMS`);
    return undefined;
  }
  return normalized;
}

/**
 * Validates and normalises a send body. `typeOverride` serves the legacy routes, which decide the
 * type themselves (§7.1).
 */
export function validateSend(body: Record<string, unknown>, region: string, typeOverride?: Channel): SendInput {
  const issues = new Issues();

  let type: Channel | undefined = typeOverride;
  if (!type) {
    if (!has(body, "type")) issues.add("body.type", "Field required");
    else if (!(MESSAGE_TYPES as readonly unknown[]).includes(body.type)) issues.add("body.type", "type must be one of: sms, mms, email");
    else type = body.type as Channel;
  }

  const to = checkAddress(body, "to", type, region, issues);
  const from = checkAddress(body, "from", type, region, issues);

  let text: string | null = null;
  if (has(body, "body") && body.body !== null) {
    if (typeof body.body !== "string") issues.add("body.body", "Expected string");
    else text = body.body;
  }

  let attachments: string[] = [];
  let attachmentsValid = true;
  if (has(body, "attachments") && body.attachments !== null) {
    if (!Array.isArray(body.attachments)) {
      attachmentsValid = false;
      issues.add("body.attachments", "Attachments must be an array of URLs");
    } else attachments = body.attachments as string[];
  }

  if (typeof body.body === "string" || body.body === null || body.body === undefined) {
    if (!text && attachments.length === 0 && attachmentsValid) issues.add("body.body", "Message must have body or attachments");
  }
  if (text && type === "email" && utf8Length(text) > EMAIL_BODY_MAX_BYTES) {
    issues.add("body.body", `Body must be at most ${EMAIL_BODY_MAX_BYTES} bytes for email`);
  } else if (text && (type === "sms" || type === "mms") && [...text].length > SMS_BODY_MAX_CHARS) {
    issues.add("body.body", `Body must be at most ${SMS_BODY_MAX_CHARS} characters for SMS/MMS`);
  }

  if (attachmentsValid) {
    if (type === "mms" && attachments.length === 0) issues.add("body.attachments", "MMS requires at least one attachment");
    else if (attachments.length > MAX_ATTACHMENTS) issues.add("body.attachments", `At most ${MAX_ATTACHMENTS} attachments are allowed`);
    else attachments.forEach((url, i) => isHttpUrl(url) || issues.add(`body.attachments.${i}`, "Attachment must be an absolute http(s) URL"));
  }

  const metadata = checkMetadata(body.metadata, issues);

  let parentId: string | null = null;
  if (has(body, "parent_id") && body.parent_id !== null) {
    if (typeof body.parent_id !== "string" || !UUID.test(body.parent_id)) issues.add("body.parent_id", "Invalid UUID");
    else parentId = body.parent_id.toLowerCase();
  }

  let conversationType: "direct" | "thread" = "direct";
  if (has(body, "conversation_type") && body.conversation_type !== null) {
    if (body.conversation_type !== "direct" && body.conversation_type !== "thread") {
      issues.add("body.conversation_type", "conversation_type must be one of: direct, thread");
    } else conversationType = body.conversation_type;
  }

  issues.throwIfAny();
  return { type: type!, from: from!, to: to!, body: text, attachments, metadata: metadata!, parentId, conversationType };
}
