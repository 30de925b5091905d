/**
 * The appliance's command line: every flag has an environment fallback (for the systemd unit's
 * EnvironmentFile) and is documented by `--help` and in the README ("Appliance flags").
 */
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
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
    throw new InvalidArgumentError(`expected HOST:PORT (e.g. 0.0.0.0:6081 or [::]:6081), got "${value}"`);
  }
  return { host: match[1], port };
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}

function seconds(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected seconds from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}

export function buildCommand(): Command {
  return new Command("stream-intel-appliance")
    .description(
      "Inline inspection appliance behind an AWS Gateway Load Balancer: receives GENEVE on UDP 6081, " +
        "inspects the inner packet against the policy, returns allowed datagrams unchanged and drops the rest.",
    )
    .addOption(
      new Option("--geneve <host:port>", "address to receive GENEVE on")
        .env("SI_GENEVE")
        .default("0.0.0.0:6081")
        .argParser(parseHostPort),
    )
    .addOption(
      new Option("--health <host:port>", "address of the HTTP server (/healthz, /metrics)")
        .env("SI_HEALTH")
        .default("0.0.0.0:8080")
        .argParser(parseHostPort),
    )
    .addOption(
      new Option("--policy <file>", "policy JSON file (reloaded on change and on SIGHUP)").env("SI_POLICY"),
    )
    .addOption(
      new Option("--policy-ssm <name>", "SSM parameter holding the policy JSON (polled)")
        .env("SI_POLICY_SSM")
        .conflicts("policy"),
    )
    .addOption(
      new Option("--policy-poll-seconds <s>", "how often to poll the SSM parameter")
        .env("SI_POLICY_POLL_SECONDS")
        .default(30)
        .argParser(seconds(1, 3600)),
    )
    .addOption(
      new Option("--workers <n>", "receive loops (SO_REUSEPORT; needs Node >= 22.12)")
        .env("SI_WORKERS")
        .default(1)
        .argParser(integer(1, 64)),
    )
    .addOption(
      new Option(
        "--drain-seconds <s>",
        "after SIGTERM: report unhealthy but keep forwarding this long, then exit 0",
      )
        .env("SI_DRAIN_SECONDS")
        .default(60)
        .argParser(seconds(0, 3600)),
    )
    .addOption(
      new Option("--return-port <port>", "UDP port allowed datagrams are returned to on the GWLB")
        .env("SI_RETURN_PORT")
        .default(6081)
        .argParser(integer(1, 65535)),
    )
    .addOption(
      new Option(
        "--sender <kind>",
        "how datagrams are returned: udp (from port 6081) or raw (from GWLB's own source port; needs CAP_NET_RAW and the native backend)",
      )
        .env("SI_SENDER")
        .choices(SENDER_KINDS)
        .default("udp"),
    )
    .addOption(
      new Option(
        "--io-backend <kind>",
        "receive loop I/O: native (batched recvmmsg/sendmmsg addon), dgram (Node's UDP socket), auto (native, else dgram with a warning)",
      )
        .env("SI_IO_BACKEND")
        .choices(IO_BACKEND_CHOICES)
        .default("auto"),
    )
    .addOption(
      new Option(
        "--socket-buffer <bytes>",
        "SO_RCVBUF/SO_SNDBUF to request (the kernel caps it at net.core.*mem_max)",
      )
        .env("SI_SOCKET_BUFFER")
        .default(16 * 1024 * 1024)
        .argParser(integer(65_536, 1 << 30)),
    )
    .addOption(
      new Option("--emf-interval <s>", "seconds between CloudWatch EMF metric lines on stdout; 0 = off")
        .env("SI_EMF_INTERVAL")
        .default(60)
        .argParser(seconds(0, 3600)),
    )
    .addOption(
      new Option("--stage <name>", "stage name, the EMF Stage dimension").env("SI_STAGE").default("local"),
    )
    .addOption(
      new Option("--instance-id <id>", "instance ID for the EMF InstanceId dimension")
        .env("SI_INSTANCE_ID")
        .default(os.hostname()),
    )
    .addOption(
      new Option("--log-level <level>", "log level")
        .env("SI_LOG_LEVEL")
        .choices(["fatal", "error", "warn", "info", "debug", "trace"])
        .default("info"),
    )
    .addOption(
      new Option("--stall-seconds <s>", "a receive loop silent this long counts as stalled (unhealthy)")
        .env("SI_STALL_SECONDS")
        .default(2)
        .argParser(seconds(0.2, 600)),
    )
    .addOption(
      new Option("--cpu-affinity <mode>", "auto: give each receive loop its own CPU, other threads the rest")
        .env("SI_CPU_AFFINITY")
        .choices(["auto", "off"])
        .default("off"),
    )
    .addHelpText(
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
