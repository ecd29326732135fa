// Email as email (issue 15 §3): the email-only send fields. They are stored together in the
// message's `email` column and sent to SendGrid in its Mail Send fields (src/providers/sendgrid.ts).
//
// Representation: `from` stays the bare address (it is the conversation's participant and the
// filters' key); a display name given as `"Ann Example <ann@example.com>"` is kept apart as
// `from_name`. `reply_to` is one address, `cc` and `bcc` lists of addresses; `to`, `cc` and `bcc`
// together hold at most MAX_EMAIL_RECIPIENTS addresses, none twice (SendGrid refuses duplicates
// across to, cc and bcc of a personalization).
import { z } from "@hono/zod-openapi";
import { normalizeEmail } from "./address";
import { utf8Length } from "./common";

export const MAX_EMAIL_RECIPIENTS = 50;
export const SUBJECT_MAX_CHARS = 998;
export const HTML_MAX_BYTES = 102_400;
const NAME_MAX_CHARS = 256;

/** What the `email` column holds; snake_case as stored and shown. */
export interface EmailFields {
  subject: string | null;
  html: string | null;
  from_name: string | null;
  reply_to: string | null;
  cc: string[];
  bcc: string[];
}

export const EMPTY_EMAIL: EmailFields = { subject: null, html: null, from_name: null, reply_to: null, cc: [], bcc: [] };

/** A stored value (jsonb, possibly from an older row) as EmailFields; null when there is none. */
export function emailFieldsOf(value: unknown): EmailFields | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const text = (x: unknown) => (typeof x === "string" ? x : null);
  const list = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : []);
  return { subject: text(v.subject), html: text(v.html), from_name: text(v.from_name), reply_to: text(v.reply_to), cc: list(v.cc), bcc: list(v.bcc) };
}

/** `Ann Example <ann@example.com>` or `"Example, Ann" <ann@example.com>` → name and address; a bare address has no name. */
export function parseNamedAddress(input: string): { name: string | null; address: string } | null {
  const text = input.trim();
  const angle = /^(.*?)\s*<([^<>]+)>$/s.exec(text);
  if (!angle) {
    const address = normalizeEmail(text);
    return address ? { name: null, address } : null;
  }
  const address = normalizeEmail(angle[2]!);
  if (!address) return null;
  let name = angle[1]!.trim();
  if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1).replace(/\\(.)/g, "$1").trim();
  // A name is a header value: no line breaks (header injection) and no stray angle brackets.
  if (/[\r\n<>]/.test(name) || name.length > NAME_MAX_CHARS) return null;
  return { name: name === "" ? null : name, address };
}

const noLineBreaks = (text: string) => !/[\r\n]/.test(text);

export const Subject = z
  .string({ error: "Subject must be a string" })
  .refine((s) => s.trim() !== "", "Subject must not be empty")
  .refine((s) => [...s].length <= SUBJECT_MAX_CHARS, `Subject must be at most ${SUBJECT_MAX_CHARS} characters`)
  .refine(noLineBreaks, "Subject must not contain line breaks")
  .openapi({ description: `The email's subject, at most ${SUBJECT_MAX_CHARS} characters on one line. Without it, \`metadata.subject\` (older clients), else SENDGRID_DEFAULT_SUBJECT.`, example: "Welcome" });

export const Html = z
  .string({ error: "html must be a string" })
  .refine((s) => utf8Length(s) <= HTML_MAX_BYTES, `html must be at most ${HTML_MAX_BYTES} bytes`)
  .openapi({ description: `The HTML part, at most ${HTML_MAX_BYTES} bytes in UTF-8. With it, \`body\` is the plain-text part.`, example: "<p>Hello</p>" });

const ADDRESS_MESSAGE = "must be a valid email address";

export const EmailFrom = z
  .string({ error: (issue) => (issue.input === undefined ? "Field required" : "Sender must be a valid email address") })
  .transform((value, ctx) => {
    const parsed = parseNamedAddress(value);
    if (parsed) return parsed;
    // The contract's wording stays exact; the display-name form is documented on the field.
    ctx.issues.push({ code: "custom", message: "Sender must be a valid email address", input: value });
    return z.NEVER;
  })
  .openapi({
    description: "The sender's address, optionally with a display name (`Ann Example <ann@example.com>`). Stored and shown as `from` (the address) and `from_name`.",
    example: "Ann Example <ann@example.com>",
  });

export const ReplyTo = z
  .string({ error: `reply_to ${ADDRESS_MESSAGE}` })
  .transform((value, ctx) => {
    const address = normalizeEmail(value);
    if (address) return address;
    ctx.issues.push({ code: "custom", message: `reply_to ${ADDRESS_MESSAGE}`, input: value });
    return z.NEVER;
  })
  .openapi({ description: "Where replies go: one address.", example: "support@example.com" });

function addressList(field: "cc" | "bcc") {
  return z
    .array(
      z.string({ error: `Each ${field} entry ${ADDRESS_MESSAGE}` }).transform((value, ctx) => {
        const address = normalizeEmail(value);
        if (address) return address;
        ctx.issues.push({ code: "custom", message: `Each ${field} entry ${ADDRESS_MESSAGE}`, input: value });
        return z.NEVER;
      }),
      { error: `${field} must be an array of email addresses` },
    )
    .max(MAX_EMAIL_RECIPIENTS - 1, `At most ${MAX_EMAIL_RECIPIENTS} recipients (to, cc and bcc together) are allowed`)
    .openapi({ description: `Addresses that receive a copy${field === "bcc" ? ", unseen by the others" : ""}. \`to\`, \`cc\` and \`bcc\` together: at most ${MAX_EMAIL_RECIPIENTS} addresses, each once.`, example: [`${field}@example.com`] });
}

export const Cc = addressList("cc");
export const Bcc = addressList("bcc");

/** The whole-message rules: the recipient total and no address twice (compared without case, as SendGrid does). */
export function recipientRules(value: { to?: unknown; cc?: unknown; bcc?: unknown }, ctx: z.RefinementCtx) {
  const lists: [string, unknown][] = [
    ["to", typeof value.to === "string" ? [value.to] : []],
    ["cc", value.cc],
    ["bcc", value.bcc],
  ];
  const seen = new Set<string>();
  let total = 0;
  for (const [field, list] of lists) {
    if (!Array.isArray(list)) continue;
    for (const [i, address] of list.entries()) {
      if (typeof address !== "string") continue;
      total++;
      const key = address.toLowerCase();
      if (seen.has(key)) ctx.addIssue({ code: "custom", path: field === "to" ? ["to"] : [field, i], message: `${address} appears more than once among to, cc and bcc` });
      seen.add(key);
    }
  }
  if (total > MAX_EMAIL_RECIPIENTS) ctx.addIssue({ code: "custom", path: ["cc"], message: `At most ${MAX_EMAIL_RECIPIENTS} recipients (to, cc and bcc together) are allowed` });
}

/** Every recipient of an email message, lower-cased: what suppressions are checked against. */
export function recipientsOf(to: string, email: EmailFields | null): string[] {
  return [to, ...(email?.cc ?? []), ...(email?.bcc ?? [])].map((a) => a.toLowerCase());
}
