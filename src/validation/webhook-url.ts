// Where the service may POST status webhooks: any http(s) URL in development (the tests' receiver
// listens on 127.0.0.1), and outside it only https to a public host name, so that an API user
// cannot point our Worker at loopback, a private network or a metadata address. Checked when an
// endpoint or a status_callback is stored and again before every attempt (the rule may have
// tightened since). Host names that resolve to private addresses are not caught here: Workers
// cannot resolve names, and Cloudflare's own egress does not reach private networks.
import type { Config } from "../config";

export const WEBHOOK_URL_MAX_LENGTH = 2048;

function ipv4(host: string): number[] | null {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** Loopback, private, link-local, CGNAT, "this network", multicast and reserved IPv4 ranges. */
function privateIpv4([a, b]: number[]): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b! >= 64 && b! <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b! >= 16 && b! <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a! >= 224
  );
}

/** `[::1]`, unique-local fc00::/7, link-local fe80::/10, `::`, and IPv4-mapped private addresses. */
function privateIpv6(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "::" || h === "::1") return true;
  if (/^f[cd]/.test(h) || /^fe[89ab]/.test(h)) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return privateIpv4(ipv4(mapped[1]!) ?? [0]);
  // ::ffff:7f00:1 (the URL parser's form of a mapped address)
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return privateIpv4([hi >> 8, hi & 255, lo >> 8, lo & 255]);
  }
  return false;
}

const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".lan"];

/** Why this URL cannot receive webhooks, or null when it can. */
export function webhookUrlProblem(config: Pick<Config, "ENVIRONMENT">, value: string): string | null {
  if (value.length > WEBHOOK_URL_MAX_LENGTH) return `URL must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`;
  if (!URL.canParse(value)) return "URL must be an absolute http(s) URL";
  const url = new URL(value);
  if (url.protocol !== "https:" && url.protocol !== "http:") return "URL must be an absolute http(s) URL";
  if (url.username || url.password) return "URL must not contain credentials";
  if (!url.hostname) return "URL must be an absolute http(s) URL";
  if (config.ENVIRONMENT === "development") return null;
  if (url.protocol !== "https:") return "URL must use https";
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) return privateIpv6(host) ? "URL must not point to a private, loopback or link-local address" : null;
  const v4 = ipv4(host);
  if (v4) return privateIpv4(v4) ? "URL must not point to a private, loopback or link-local address" : null;
  if (host === "localhost" || LOCAL_SUFFIXES.some((s) => host.endsWith(s))) return "URL must name a public host, not a local one";
  if (!host.includes(".")) return "URL must name a public host (a fully qualified domain name)";
  return null;
}
