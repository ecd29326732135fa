// Addresses as docs/api.md defines them: phone numbers to E.164 through libphonenumber-js
// (a *possible* number, so fictional 555 numbers pass), email addresses trimmed with the domain
// lower-cased.
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/min";

export function normalizePhone(input: string, region: string): string | null {
  let text = input.trim().replace(/[\s\-.()]/g, "");
  if (text.startsWith("00")) text = `+${text.slice(2)}`;
  if (!/^\+?\d{2,17}$/.test(text)) return null;
  const parsed = text.startsWith("+")
    ? parsePhoneNumberFromString(text)
    : parsePhoneNumberFromString(text, region as CountryCode);
  if (!parsed || !parsed.isPossible()) return null;
  return parsed.number;
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

export function normalizeEmail(input: string): string | null {
  const text = input.trim();
  if (text.length === 0 || text.length > 254) return null;
  const at = text.indexOf("@");
  if (at <= 0 || at !== text.lastIndexOf("@")) return null;
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (local.length > 64) return null;
  // No whitespace or control characters, and nothing that makes it a "Name <addr>" display form.
  if (/[\s\u0000-\u001f\u007f<>]/.test(local)) return null;
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return null;
  const labels = domain.split(".");
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return null;
  if (!/^[A-Za-z]{2,}$/.test(labels[labels.length - 1]!)) return null;
  return `${local}@${domain.toLowerCase()}`;
}

export type Channel = "sms" | "mms" | "email";

export function channelGroup(type: Channel): "phone" | "email" {
  return type === "email" ? "email" : "phone";
}

export function normalizeAddress(type: Channel, input: string, region: string): string | null {
  return type === "email" ? normalizeEmail(input) : normalizePhone(input, region);
}

/** Best-effort normalisation for filters and inbound webhooks: phone, else email, else trimmed. */
export function normalizeLoose(input: string, region: string): string {
  return normalizePhone(input, region) ?? normalizeEmail(input) ?? input.trim();
}
