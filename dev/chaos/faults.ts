// Runs a profile's fault schedule against the stack: provider outages and revoked credentials in
// the sandbox, Redis and Postgres crashed and restarted, workerd killed and restarted. Every step
// logs when it started and when the service was whole again.
import type { Stack } from "../stack.ts";
import type { FaultStep } from "./profile.ts";
import type { CrashableService } from "./services.ts";

export interface FaultRecord {
  label: string;
  /** seconds since the load started */
  startedS: number;
  endedS: number;
  detail?: string;
}

export interface FaultTargets {
  stack: Stack;
  redis: CrashableService;
  postgres: CrashableService;
  /** called just before workerd is killed, to say what was in flight */
  beforeEviction(): Promise<string>;
  /** called once workerd answers again */
  afterEviction(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function apply(step: FaultStep, targets: FaultTargets): Promise<string | undefined> {
  switch (step.kind) {
    case "provider":
      targets.stack.sandbox!.setFault(step.outcomes);
      await sleep(step.seconds * 1000);
      targets.stack.sandbox!.setFault([]);
      return undefined;
    case "credentials":
      // Account-wide: Twilio answers 401 (20003) to every REST call, SendGrid 401.
      targets.stack.sandbox!.setCredentials({ twilio: "revoked", sendgrid: "revoked" });
      await sleep(step.seconds * 1000);
      targets.stack.sandbox!.setCredentials({ twilio: "valid", sendgrid: "valid" });
      return undefined;
    case "redis":
    case "postgres": {
      const service = targets[step.kind];
      await service.crash();
      await sleep(step.seconds * 1000);
      await service.start();
      return undefined;
    }
    case "evict": {
      const detail = await targets.beforeEviction();
      try {
        await targets.stack.crash();
      } finally {
        targets.afterEviction();
      }
      return detail;
    }
  }
}

export async function runFaults(steps: FaultStep[], targets: FaultTargets, startedAt: number, log: (line: string) => void): Promise<FaultRecord[]> {
  const seconds = () => (performance.now() - startedAt) / 1000;
  return Promise.all(
    steps.map(async (step) => {
      await sleep(Math.max(0, step.at * 1000 - (performance.now() - startedAt)));
      const startedS = seconds();
      log(`fault: ${step.label}${"seconds" in step ? ` for ${step.seconds} s` : ""}`);
      const detail = await apply(step, targets);
      const record = { label: step.label, startedS, endedS: seconds(), detail };
      log(`fault over: ${step.label} (${(record.endedS - record.startedS).toFixed(1)} s)${detail ? `; ${detail}` : ""}`);
      return record;
    }),
  );
}
