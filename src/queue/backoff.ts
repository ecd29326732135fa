// Retry delays (docs/api.md): min(cap, base × 2^(attempt−1)) × U(0.8, 1.2) seconds, and
// never sooner than the provider's Retry-After.
export interface BackoffSettings {
  baseSeconds: number;
  maxSeconds: number;
}

export function backoffSeconds(attempt: number, settings: BackoffSettings, retryAfter?: number, random: () => number = Math.random): number {
  const exponential = Math.min(settings.maxSeconds, settings.baseSeconds * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential * (0.8 + 0.4 * random());
  return Math.max(jittered, retryAfter ?? 0);
}
