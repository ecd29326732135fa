// Every request has a deadline (REQUEST_DEADLINE_MS): each dependency call it makes gets at most
// what is left of it, so that the request is answered in time whatever hangs.

/** A call's timeout: the configured one, shortened to what is left before `deadline` (epoch ms). */
export function boundedTimeout(configuredMs: number, deadline: number | undefined): number {
  return deadline === undefined ? configuredMs : Math.max(50, Math.min(configuredMs, deadline - Date.now()));
}
