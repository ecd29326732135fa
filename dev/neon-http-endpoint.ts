// Where the dev Neon proxy serves Neon's SQL-over-HTTP endpoint, derived from the one setting the
// Worker has for it (NEON_WS_PROXY). No Node imports: the Worker and the contract tests use it.

/**
 * "127.0.0.1:8078/v1" → "http://127.0.0.1:8078/sql": the same server and port as the WebSocket
 * relay. For `neonConfig.fetchEndpoint`, development only (production keeps the driver's default,
 * https://api.<endpoint host>/sql).
 */
export function neonHttpEndpoint(wsProxy: string): string {
  const authority = wsProxy.replace(/^[a-z]+:\/\//i, "").split(/[/?#]/, 1)[0] ?? "";
  if (!authority) throw new Error(`NEON_WS_PROXY has no host:port: "${wsProxy}"`);
  return `http://${authority}/sql`;
}
