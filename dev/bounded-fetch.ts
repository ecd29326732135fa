// One HTTP request with a ceiling on everything it waits for: connecting, the answer's head and its
// whole body. The harnesses (chaos load, benchmarks, smoke, verify:queue, the stack's probes) use it
// so that no run can wait forever on a request.
//
// Why not just `fetch(url, { signal: AbortSignal.timeout(ms) })`: Node's timeout signal is held only
// weakly by its own timer (a FinalizationRegistry clears the timer once the signal is collected),
// and undici follows a request's signal through weak references too. Nothing then guarantees the
// abort still fires for a request that is stuck, e.g. on a connection whose peer vanished. Here the
// controller and its timer are held strongly until the request settles, and a plain timer races the
// whole exchange as a backstop: even if the abort were ignored, the caller gets "no answer" on time.

export interface BoundedAnswer {
  /** HTTP status, or 0 when no answer came within the ceiling (refused, reset, timed out) */
  status: number;
  headers?: Headers;
  /** the body as text ("" when none came) */
  text: string;
  /** for status 0: the connection error's code, or "timeout" */
  error?: string;
  ms: number;
}

export async function boundedFetch(url: string, init: RequestInit, timeoutMs: number): Promise<BoundedAnswer> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const ceiling = new Promise<BoundedAnswer>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError"));
      resolve({ status: 0, text: "", error: "timeout", ms: performance.now() - started });
    }, timeoutMs);
  });
  const exchange = (async (): Promise<BoundedAnswer> => {
    try {
      const res = await fetch(url, { ...init, signal: controller.signal });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, ms: performance.now() - started };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      const name = error instanceof Error ? error.name : String(error);
      return { status: 0, text: "", error: name === "TimeoutError" || name === "AbortError" ? "timeout" : (cause ?? name), ms: performance.now() - started };
    }
  })();
  try {
    return await Promise.race([exchange, ceiling]);
  } finally {
    clearTimeout(timer);
  }
}

/** The body as JSON, or undefined when it is not JSON. */
export function jsonOf(answer: BoundedAnswer): any {
  try {
    return answer.text ? JSON.parse(answer.text) : undefined;
  } catch {
    return undefined;
  }
}
