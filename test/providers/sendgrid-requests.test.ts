// The exact HTTP requests the live SendGrid client sends (method, URL, headers, JSON body), checked
// against what the provider sandbox received, including an attachment fetched and sent as base64.
import { describe, expect, it } from "vitest";
import { createSendGrid, looksLikeHtml } from "../../src/providers/sendgrid";
import { SANDBOX_CREDENTIALS, outbound, received, rejection, sandboxConfig, sandboxFile, sandboxUrl, uniqueEmail } from "../helpers/sandbox";

/** What the sandbox serves for `bytes=n`: byte i = i % 256, as base64. */
function expectedBase64(n: number): string {
  let binary = "";
  for (let i = 0; i < n; i++) binary += String.fromCharCode(i % 256);
  return btoa(binary);
}

describe("SendGrid client requests", () => {
  it("sends an email with an attachment as POST /v3/mail/send, Bearer auth, JSON with personalizations, custom_args.message_id, subject, HTML content and the file base64", async () => {
    const to = uniqueEmail();
    const file = sandboxFile("report.pdf", { bytes: 1000, type: "application/pdf" });
    const message = outbound({ type: "email", to, from: "sender@example.com", body: "<p>Your report</p>", attachments: [file], metadata: { subject: "Monthly report" } });
    const result = await createSendGrid(sandboxConfig()).send(message);

    const [request, ...rest] = await received(to);
    expect(rest).toHaveLength(0);
    expect(request!.method).toBe("POST");
    expect(`${sandboxUrl()}${request!.path}`).toBe(`${sandboxUrl()}/v3/mail/send`);
    expect(request!.headers.authorization).toBe(`Bearer ${SANDBOX_CREDENTIALS.sendgridApiKey}`);
    expect(request!.headers["content-type"]).toBe("application/json");
    expect(request!.body).toEqual({
      personalizations: [{ to: [{ email: to }], custom_args: { message_id: message.id } }],
      from: { email: "sender@example.com" },
      subject: "Monthly report",
      content: [{ type: "text/html", value: "<p>Your report</p>" }],
      attachments: [{ content: expectedBase64(1000), filename: "report.pdf", type: "application/pdf", disposition: "attachment" }],
    });

    expect(result.providerMessageId).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(result).toMatchObject({ providerStatus: "accepted", httpStatus: 202 });
  });

  it("sends plain text as text/plain with the default subject when metadata has no string subject", async () => {
    const to = uniqueEmail();
    await createSendGrid(sandboxConfig({ SENDGRID_DEFAULT_SUBJECT: "A message for you" })).send(
      outbound({ type: "email", to, body: "Prices: 1 < 2 and 3 > 2", metadata: { subject: 42 } }),
    );
    const [request] = await received(to);
    expect(request!.body).toMatchObject({ subject: "A message for you", content: [{ type: "text/plain", value: "Prices: 1 < 2 and 3 > 2" }] });
    expect(request!.body).not.toHaveProperty("attachments");
  });

  it("counts attachment bytes without a Content-Length and fails permanently over the cap, before any request reaches SendGrid", async () => {
    const to = uniqueEmail();
    const config = sandboxConfig({ SENDGRID_MAX_ATTACHMENT_BYTES: "1500" });
    const files = [sandboxFile("a.bin", { bytes: 1000, chunked: 1 }), sandboxFile("b.bin", { bytes: 1000, chunked: 1 })];
    const error = await rejection(createSendGrid(config).send(outbound({ type: "email", to, attachments: files })));
    expect(error).toMatchObject({ errorClass: "permanent", code: "attachments_too_large" });
    expect(await received(to)).toHaveLength(0);
  });

  it("fails permanently when an attachment URL answers 404, and retryably when it answers 503", async () => {
    const to = uniqueEmail();
    const client = createSendGrid(sandboxConfig());
    const missing = await rejection(client.send(outbound({ type: "email", to, attachments: [sandboxFile("gone.txt", { status: 404 })] })));
    expect(missing).toMatchObject({ errorClass: "permanent", code: "attachment_unavailable" });
    const busy = await rejection(client.send(outbound({ type: "email", to, attachments: [sandboxFile("busy.txt", { status: 503 })] })));
    expect(busy).toMatchObject({ errorClass: "transient", code: "attachment_unavailable" });
    expect(await received(to)).toHaveLength(0);
  });

  it("has no candidate list: SendGrid offers no cheap way to ask whether a mail was accepted", () => {
    expect(createSendGrid(sandboxConfig()).listCandidates).toBeUndefined();
  });

  it("tells HTML bodies from text by the presence of a tag", () => {
    expect(looksLikeHtml("<p>Test email</p>")).toBe(true);
    expect(looksLikeHtml("Line one<br/>line two")).toBe(true);
    expect(looksLikeHtml("<!DOCTYPE html><html></html>")).toBe(true);
    expect(looksLikeHtml("if a < b and c > d")).toBe(false);
    expect(looksLikeHtml("mail me at <me@example.com>")).toBe(false);
  });
});
