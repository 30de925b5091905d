import pino, { type Logger } from "pino";

export type { Logger };

/** JSON lines on stdout: journald keeps them, the CloudWatch agent ships them. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "stream-intel-appliance" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
