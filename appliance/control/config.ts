/**
 * The appliance's command line: every flag has an environment fallback (for the systemd unit's
 * EnvironmentFile) and is documented by `--help` and in the README ("Appliance flags").
 */
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { GENEVE_PORT, HEALTH_PORT } from "../../contracts/gwlb.ts";
import { SENDER_KINDS, type SenderKind } from "../dataplane/sender.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface ApplianceConfig {
  geneve: HostPort;
  health: HostPort;
  policyFile?: string;
  policySsm?: string;
  policyPollSeconds: number;
  workers: number;
  drainSeconds: number;
  returnPort: number;
  sender: SenderKind;
  ioBackend: IoBackendChoice;
  socketBufferBytes: number;
  emfIntervalSeconds: number;
  stage: string;
  instanceId: string;
  logLevel: string;
  stallSeconds: number;
  cpuAffinity: "auto" | "off";
}

export const IO_BACKEND_CHOICES = ["auto", "native", "dgram"] as const;
export type IoBackendChoice = (typeof IO_BACKEND_CHOICES)[number];

export function parseHostPort(value: string): HostPort {
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || match[1] === "" || port > 65535) {
    throw new InvalidArgumentError(
      `expected HOST:PORT (e.g. 0.0.0.0:${GENEVE_PORT} or [::]:${GENEVE_PORT}), got "${value}"`,
    );
  }
  return { host: match[1], port };
}

function integer(min: number, max: number) {
  return bounded(Number.isInteger, `expected a whole number from ${min} to ${max}`, min, max);
}

function seconds(min: number, max: number) {
  return bounded(Number.isFinite, `expected seconds from ${min} to ${max}`, min, max);
}

function bounded(valid: (n: number) => boolean, expected: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!valid(n) || n < min || n > max) throw new InvalidArgumentError(`${expected}, got "${value}"`);
    return n;
  };
}

interface FlagSpec {
  flags: string;
  help: string;
  env: string;
  default?: unknown;
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  conflicts?: string;
}

function option(spec: FlagSpec): Option {
  const option = new Option(spec.flags, spec.help).env(spec.env);
  if (spec.default !== undefined) option.default(spec.default);
  if (spec.parse) option.argParser(spec.parse);
  if (spec.choices) option.choices(spec.choices);
  if (spec.conflicts) option.conflicts(spec.conflicts);
  return option;
}

/** Every flag, in `--help` order. */
const FLAGS: readonly FlagSpec[] = [
  {
    flags: "--geneve <host:port>",
    help: "address to receive GENEVE on",
    env: "SI_GENEVE",
    default: `0.0.0.0:${GENEVE_PORT}`,
    parse: parseHostPort,
  },
  {
    flags: "--health <host:port>",
    help: "address of the HTTP server (/healthz, /metrics)",
    env: "SI_HEALTH",
    default: `0.0.0.0:${HEALTH_PORT}`,
    parse: parseHostPort,
  },
  { flags: "--policy <file>", help: "policy JSON file (reloaded on change and on SIGHUP)", env: "SI_POLICY" },
  {
    flags: "--policy-ssm <name>",
    help: "SSM parameter holding the policy JSON (polled)",
    env: "SI_POLICY_SSM",
    conflicts: "policy",
  },
  {
    flags: "--policy-poll-seconds <s>",
    help: "how often to poll the SSM parameter",
    env: "SI_POLICY_POLL_SECONDS",
    default: 30,
    parse: seconds(1, 3600),
  },
  {
    flags: "--workers <n>",
    help: "receive loops (SO_REUSEPORT; needs Node >= 22.12)",
    env: "SI_WORKERS",
    default: 1,
    parse: integer(1, 64),
  },
  {
    flags: "--drain-seconds <s>",
    help: "after SIGTERM: report unhealthy but keep forwarding this long, then exit 0",
    env: "SI_DRAIN_SECONDS",
    default: 60,
    parse: seconds(0, 3600),
  },
  {
    flags: "--return-port <port>",
    help: "UDP port allowed datagrams are returned to on the GWLB",
    env: "SI_RETURN_PORT",
    default: GENEVE_PORT,
    parse: integer(1, 65535),
  },
  {
    flags: "--sender <kind>",
    help: `how datagrams are returned: udp (from port ${GENEVE_PORT}) or raw (from GWLB's own source port; needs CAP_NET_RAW and the native backend)`,
    env: "SI_SENDER",
    choices: SENDER_KINDS,
    default: "udp",
  },
  {
    flags: "--io-backend <kind>",
    help: "receive loop I/O: native (batched recvmmsg/sendmmsg addon), dgram (Node's UDP socket), auto (native, else dgram with a warning)",
    env: "SI_IO_BACKEND",
    choices: IO_BACKEND_CHOICES,
    default: "auto",
  },
  {
    flags: "--socket-buffer <bytes>",
    help: "SO_RCVBUF/SO_SNDBUF to request (the kernel caps it at net.core.*mem_max)",
    env: "SI_SOCKET_BUFFER",
    default: 16 * 1024 * 1024,
    parse: integer(65_536, 1 << 30),
  },
  {
    flags: "--emf-interval <s>",
    help: "seconds between CloudWatch EMF metric lines on stdout; 0 = off",
    env: "SI_EMF_INTERVAL",
    default: 60,
    parse: seconds(0, 3600),
  },
  { flags: "--stage <name>", help: "stage name, the EMF Stage dimension", env: "SI_STAGE", default: "local" },
  {
    flags: "--instance-id <id>",
    help: "instance ID for the EMF InstanceId dimension",
    env: "SI_INSTANCE_ID",
    default: os.hostname(),
  },
  {
    flags: "--log-level <level>",
    help: "log level",
    env: "SI_LOG_LEVEL",
    choices: ["fatal", "error", "warn", "info", "debug", "trace"],
    default: "info",
  },
  {
    flags: "--stall-seconds <s>",
    help: "a receive loop silent this long counts as stalled (unhealthy)",
    env: "SI_STALL_SECONDS",
    default: 2,
    parse: seconds(0.2, 600),
  },
  {
    flags: "--cpu-affinity <mode>",
    help: "auto: give each receive loop its own CPU, other threads the rest",
    env: "SI_CPU_AFFINITY",
    choices: ["auto", "off"],
    default: "off",
  },
];

export function buildCommand(): Command {
  const command = new Command("stream-intel-appliance").description(
    `Inline inspection appliance behind an AWS Gateway Load Balancer: receives GENEVE on UDP ${GENEVE_PORT}, ` +
      "inspects the inner packet against the policy, returns allowed datagrams unchanged and drops the rest.",
  );
  for (const spec of FLAGS) command.addOption(option(spec));
  return command.addHelpText(
    "after",
    "\nGET /healthz answers 200 while serving and 503 while starting, draining or stalled. SIGHUP reloads the\n" +
      "policy; SIGTERM drains. Exactly one of --policy / --policy-ssm is required.",
  );
}

/** Parses argv (as in process.argv); commander prints usage errors and exits with status 1. */
export function parseConfig(argv: readonly string[]): ApplianceConfig {
  const command = buildCommand();
  command.parse(argv as string[]);
  const o = command.opts();
  if (!o.policy && !o.policySsm)
    command.error("error: one of --policy FILE or --policy-ssm NAME is required");
  if (o.sender === "raw" && o.ioBackend === "dgram")
    command.error("error: --sender raw needs the native I/O backend (--io-backend auto or native)");
  if (o.sender === "raw" && o.geneve.host.includes(":"))
    command.error("error: --sender raw returns over IPv4 only; --geneve must be an IPv4 address");
  return {
    geneve: o.geneve,
    health: o.health,
    policyFile: o.policy,
    policySsm: o.policySsm,
    policyPollSeconds: o.policyPollSeconds,
    workers: o.workers,
    drainSeconds: o.drainSeconds,
    returnPort: o.returnPort,
    sender: o.sender,
    ioBackend: o.ioBackend,
    socketBufferBytes: o.socketBuffer,
    emfIntervalSeconds: o.emfInterval,
    stage: o.stage,
    instanceId: o.instanceId,
    logLevel: o.logLevel,
    stallSeconds: o.stallSeconds,
    cpuAffinity: o.cpuAffinity,
  };
}
