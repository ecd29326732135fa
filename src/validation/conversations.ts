// Conversation request bodies (API-CONTRACT §4.1, §4.4, §4.6).
import { CONVERSATION_STATUSES, MESSAGE_TYPES } from "../db/schema";
import type { CreateConversation, ConversationPatch } from "../services/conversations";
import { type Channel, normalizeAddress } from "./address";
import { checkMetadata, has, Issues } from "./common";

function checkTitle(body: Record<string, unknown>, issues: Issues): string | null | undefined {
  if (!Object.hasOwn(body, "title")) return undefined;
  const title = body.title;
  if (title === null) return null;
  if (typeof title !== "string") {
    issues.add("body.title", "Expected string");
    return undefined;
  }
  if ([...title].length > 255) {
    issues.add("body.title", "title must be at most 255 characters");
    return undefined;
  }
  return title;
}

export function validateCreateConversation(body: Record<string, unknown>, region: string): CreateConversation {
  const issues = new Issues();
  let type: "direct" | "thread" = "direct";
  if (has(body, "type") && body.type !== null) {
    if (body.type !== "direct" && body.type !== "thread") issues.add("body.type", "type must be one of: direct, thread");
    else type = body.type;
  }
  let channelType: Channel = "email";
  let channelValid = true;
  if (has(body, "channel_type") && body.channel_type !== null) {
    if (!(MESSAGE_TYPES as readonly unknown[]).includes(body.channel_type)) {
      channelValid = false;
      issues.add("body.channel_type", "channel_type must be one of: sms, mms, email");
    } else channelType = body.channel_type as Channel;
  }
  const participants: Record<"participant_from" | "participant_to", string | undefined> = { participant_from: undefined, participant_to: undefined };
  if (!has(body, "participant_from") || !has(body, "participant_to") || body.participant_from === null || body.participant_to === null) {
    issues.add("body", `${type} conversations require 'participant_from' and 'participant_to'`);
  } else if (channelValid) {
    for (const key of ["participant_from", "participant_to"] as const) {
      const value = body[key];
      const normalized = typeof value === "string" ? normalizeAddress(channelType, value, region) : null;
      if (normalized === null) {
        issues.add(`body.${key}`, channelType === "email" ? `${key} must be a valid email address` : `${key} must be a valid phone number for SMS/MMS`);
      } else participants[key] = normalized;
    }
  }
  const title = checkTitle(body, issues);
  const metadata = checkMetadata(body.metadata, issues);
  issues.throwIfAny();
  return {
    type,
    channelType,
    participantFrom: participants.participant_from!,
    participantTo: participants.participant_to!,
    title: title ?? null,
    metadata: metadata!,
  };
}

export function validateConversationPatch(body: Record<string, unknown>): ConversationPatch {
  const issues = new Issues();
  const patch: ConversationPatch = {};
  const title = checkTitle(body, issues);
  if (title !== undefined) patch.title = title;
  if (has(body, "status")) {
    if (!(CONVERSATION_STATUSES as readonly unknown[]).includes(body.status)) {
      issues.add("body.status", `status must be one of: ${CONVERSATION_STATUSES.join(", ")}`);
    } else patch.status = body.status as string;
  }
  if (has(body, "metadata") && body.metadata !== null) {
    const metadata = checkMetadata(body.metadata, issues);
    if (metadata) patch.metadata = metadata;
  }
  issues.throwIfAny();
  return patch;
}

export interface SearchInput {
  query: string;
  limit: number;
  offset: number;
}

export function validateSearch(body: Record<string, unknown>): SearchInput {
  const issues = new Issues();
  const query = body.query;
  if (typeof query !== "string" || query.length < 1 || [...query].length > 200) {
    issues.add("body.query", "query must be 1-200 characters");
  }
  const int = (key: string, min: number, max: number, fallback: number) => {
    if (!has(body, key) || body[key] === null) return fallback;
    const n = body[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      issues.add(`body.${key}`, `${key} must be an integer between ${min} and ${max}`);
      return fallback;
    }
    return n;
  };
  const limit = int("limit", 1, 50, 20);
  const offset = int("offset", 0, Number.MAX_SAFE_INTEGER, 0);
  issues.throwIfAny();
  return { query: query as string, limit, offset };
}
