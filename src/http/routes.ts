// The route table, used before any other check (docs/api.md): 404 for an unknown path,
// 405 with `Allow` for a known path and the wrong method, and the template for rate-limit buckets
// and metrics labels (never a raw id).

export interface RouteEntry {
  method: string;
  /** OpenAPI-style template: /api/v1/messages/{message_id} */
  template: string;
  pattern: RegExp;
}

export function compileTemplate(template: string): RegExp {
  const source = template
    .split("/")
    .map((part) => (part.startsWith("{") || part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}/?$`);
}

export class RouteTable {
  private readonly entries: RouteEntry[] = [];

  add(method: string, template: string) {
    this.entries.push({ method: method.toUpperCase(), template, pattern: compileTemplate(template) });
    // A literal segment wins over a parameter: /conversations/search before /conversations/{id}.
    const params = (t: string) => (t.match(/\{/g) ?? []).length;
    this.entries.sort((a, b) => params(a.template) - params(b.template));
  }

  /** The matched template, or which methods the path allows when the method is wrong. */
  match(method: string, path: string): { template: string } | { allow: string[] } | null {
    const upper = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
    const allow = new Set<string>();
    let template: string | undefined;
    for (const entry of this.entries) {
      if (!entry.pattern.test(path)) continue;
      if (entry.method === upper) return { template: entry.template };
      allow.add(entry.method);
      template ??= entry.template;
    }
    if (allow.size === 0) return null;
    return { allow: [...allow].sort() };
  }
}
