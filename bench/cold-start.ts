// Cold start: the time from spawning a fresh `wrangler dev` (workerd with the bundled Worker) to
// its first 200 from /live, three times.  npm run bench:cold-start
import { startBenchStack } from "./lib.ts";

const times: number[] = [];
for (let i = 0; i < 3; i++) {
  const stack = await startBenchStack(Number(process.env.PORT ?? 8182));
  times.push(stack.coldStartMs);
  await stack.close();
}
console.log(`cold start, spawn of wrangler dev → first /live 200: ${times.map((t) => `${(t / 1000).toFixed(2)} s`).join(", ")}`);
