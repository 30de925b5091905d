/**
 * Where each system under test runs: in a network namespace of its own, joined to the load generator
 * (in the benchmark's namespace) by a veth pair, so that each side's packets cross a device and are
 * received on its own core (RPS steers each veth's receive work to the core of the process behind it),
 * not delivered by the other side's system call as on loopback. Needs root (`ip netns`); without it,
 * every site is an address on loopback, as the benchmark ran before.
 *
 * Namespaces are named `<prefix>-<pid>-<site>` and removed on close, on exit, on SIGINT/SIGTERM and,
 * for a run that was killed, by the next run (any whose pid is gone).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";

export interface Site {
  name: string;
  /** The namespace's name, or null on loopback. */
  namespace: string | null;
  /** The system under test's address. */
  address: string;
  /** The generator's address facing it. */
  generator: string;
  /** The system under test's network device (its end of the veth pair, or lo). */
  device: string;
}

export interface NetworkOptions {
  prefix?: string;
  /** Core of the systems under test and cores of the generator (a taskset list), for RPS. */
  sutCpu: string | null;
  generatorCpus: string | null;
  /** Force loopback (also what happens without root). */
  loopback?: boolean;
}

/** A VPC's jumbo-frame MTU: GWLB's 8,500-byte inner packets in GENEVE cross it unfragmented, as there. */
const MTU = "9001";

const ip = (...args: string[]) =>
  execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });

/** The hexadecimal CPU mask /sys/class/net/<if>/queues/rx-0/rps_cpus takes for a taskset list. */
export function cpuMask(list: string): string {
  let mask = 0n;
  for (const part of list.split(",")) {
    const [from, to = from] = part.split("-").map(Number);
    for (let cpu = from; cpu <= to; cpu++) mask |= 1n << BigInt(cpu);
  }
  return mask.toString(16);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Every process still in `namespace` killed, then the namespace (and with it its veth end) deleted. */
function removeNamespace(namespace: string): void {
  try {
    for (const pid of ip("netns", "pids", namespace).split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
  } catch {
    // no such namespace
  }
  try {
    ip("netns", "delete", namespace);
  } catch {
    // no such namespace
  }
}

/** Namespaces of runs of this prefix whose process is gone (killed, crashed). */
export function removeStale(prefix: string): string[] {
  const pattern = new RegExp(`^${prefix}-(\\d+)-`);
  const stale: string[] = [];
  let listing = "";
  try {
    listing = ip("netns", "list");
  } catch {
    return stale;
  }
  for (const line of listing.split("\n")) {
    const name = line.split(" ")[0];
    const match = pattern.exec(name);
    if (match && !pidAlive(Number(match[1]))) {
      removeNamespace(name);
      stale.push(name);
    }
  }
  return stale;
}

/** Namespaces of this prefix that exist now. */
export function listNamespaces(prefix: string): string[] {
  try {
    return ip("netns", "list")
      .split("\n")
      .map((line) => line.split(" ")[0])
      .filter((name) => name.startsWith(`${prefix}-`));
  } catch {
    return [];
  }
}

/** Why this process cannot make network namespaces, or null when it can. */
function namespacesUnavailable(prefix: string): string | null {
  if (process.getuid?.() !== 0) return "not root: network namespaces need CAP_SYS_ADMIN";
  const probe = `${prefix}-${process.pid}-probe`;
  try {
    ip("netns", "add", probe);
    ip("netns", "delete", probe);
    return null;
  } catch (error) {
    removeNamespace(probe);
    return `ip netns add failed: ${(error as { stderr?: string }).stderr?.trim() || String(error)}`;
  }
}

function writeRps(iface: string, cpus: string | null, namespace: string | null): void {
  if (cpus === null || process.env.SI_BENCH_RPS === "0") return;
  const file = `/sys/class/net/${iface}/queues/rx-0/rps_cpus`;
  try {
    if (namespace === null) writeFileSync(file, cpuMask(cpus));
    else ip("netns", "exec", namespace, "sh", "-c", `echo ${cpuMask(cpus)} > ${file}`);
  } catch {
    // without RPS the receive work stays on the sending core, as on loopback
  }
}

export class Network {
  readonly sites = new Map<string, Site>();
  /** Why the sites are on loopback, or null when each has a namespace. */
  readonly fallback: string | null;
  private readonly prefix: string;
  /** The generator's end of each site's veth pair. */
  private readonly veths = new Map<string, string>();
  private readonly options: NetworkOptions;
  private readonly onExit = () => this.close();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.close();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };

  constructor(names: readonly string[], options: NetworkOptions) {
    this.options = options;
    this.prefix = options.prefix ?? "si-bench";
    this.fallback = options.loopback ? "loopback asked for" : namespacesUnavailable(this.prefix);
    if (this.fallback === null) {
      process.on("exit", this.onExit);
      process.once("SIGINT", this.onSignal);
      process.once("SIGTERM", this.onSignal);
      removeStale(this.prefix);
    }
    names.forEach((name, i) => {
      this.sites.set(name, this.fallback === null ? this.namespaced(name, i) : this.loopback(name, i));
    });
  }

  site(name: string): Site {
    const site = this.sites.get(name);
    if (!site) throw new Error(`no site ${name}`);
    return site;
  }

  /** The command line that runs `argv` in the site's namespace (as is on loopback). */
  command(site: Site, argv: readonly string[]): string[] {
    return site.namespace ? ["ip", "netns", "exec", site.namespace, ...argv] : [...argv];
  }

  close(): void {
    process.off("exit", this.onExit);
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
    for (const site of this.sites.values()) {
      if (!site.namespace) continue;
      try {
        ip("link", "delete", this.veths.get(site.name) ?? "");
      } catch {
        // deleted with the namespace already
      }
      removeNamespace(site.namespace);
    }
  }

  private loopback(name: string, i: number): Site {
    return { name, namespace: null, address: `127.0.30.${2 + i}`, generator: "127.0.30.1", device: "lo" };
  }

  /** A namespace with one end of a veth pair (198.18.<i>.2/30), the other end here (198.18.<i>.1). */
  private namespaced(name: string, i: number): Site {
    const namespace = `${this.prefix}-${process.pid}-${name}`;
    const outer = `sb${process.pid}g${i}`;
    const inner = `sb${process.pid}s${i}`;
    const site = { name, namespace, address: `198.18.${i}.2`, generator: `198.18.${i}.1`, device: inner };
    this.sites.set(name, site);
    this.veths.set(name, outer);
    ip("netns", "add", namespace);
    ip(
      "link",
      "add",
      outer,
      "mtu",
      MTU,
      "type",
      "veth",
      "peer",
      "name",
      inner,
      "mtu",
      MTU,
      "netns",
      namespace,
    );
    ip("addr", "add", `${site.generator}/30`, "dev", outer);
    ip("link", "set", outer, "up");
    ip("-n", namespace, "addr", "add", `${site.address}/30`, "dev", inner);
    ip("-n", namespace, "link", "set", inner, "up");
    ip("-n", namespace, "link", "set", "lo", "up");
    writeRps(outer, this.options.generatorCpus, null);
    writeRps(inner, this.options.sutCpu, namespace);
    return site;
  }
}
