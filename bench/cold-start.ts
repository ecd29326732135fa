// Cold start: the time from spawning a fresh `wrangler dev` (workerd with the bundled Worker) to
// its first 200 from /live, three times.  npm run bench:cold-start   (PORT, COLD_STARTS optional)
// bench/all.ts imports runColdStart and uses the returned figures.
import { isMain, startBenchStack } from "./lib.ts";

export interface ColdStartOptions {
  port: number;
  runs: number;
}

export interface ColdStartResult {
  /** one per run, in order */
  ms: number[];
}

export function coldStartOptionsFromEnv(): ColdStartOptions {
  return { port: Number(process.env.PORT ?? 8182), runs: Number(process.env.COLD_STARTS ?? 3) };
}

export async function runColdStart({ port, runs }: ColdStartOptions): Promise<ColdStartResult> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const stack = await startBenchStack(port);
    times.push(stack.coldStartMs);
    await stack.close();
  }
  console.log(`cold start, spawn of wrangler dev → first /live 200: ${times.map((t) => `${(t / 1000).toFixed(2)} s`).join(", ")}`);
  return { ms: times };
}

if (isMain(import.meta.url)) await runColdStart(coldStartOptionsFromEnv());
