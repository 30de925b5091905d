/**
 * Kernel-side counters of the GENEVE sockets: datagrams dropped because a receive buffer was full.
 * They happen before the appliance sees a packet, so only the kernel can count them (Linux exposes
 * them per socket in /proc/net/udp and /proc/net/udp6, "drops" column).
 */
import { readFileSync } from "node:fs";

/** Hex of an IPv4 address as /proc/net/udp prints it on little-endian hosts (x86_64, arm64). */
function procIpv4(address: string): string {
  const octets = address.split(".").map(Number);
  return octets
    .reverse()
    .map((o) => o.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}

export interface SocketStats {
  /** Datagrams dropped because the receive buffer was full, since the sockets were opened. */
  drops: number;
  /** Bytes waiting in the receive queues right now: a loop that keeps up leaves this near zero. */
  receiveQueueBytes: number;
}

/**
 * Totals over the sockets bound to `port` (on `host`, or any address when host is a wildcard or
 * IPv6). Returns null where /proc is not available.
 */
export function socketStats(
  host: string,
  port: number,
  files = ["/proc/net/udp", "/proc/net/udp6"],
): SocketStats | null {
  const portHex = port.toString(16).padStart(4, "0").toUpperCase();
  const wanted = host.includes(":") || host === "0.0.0.0" ? null : `${procIpv4(host)}:${portHex}`;
  let total = 0;
  let queued = 0;
  let readable = false;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    readable = true;
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 13) continue;
      const local = fields[1];
      if (wanted ? local !== wanted : !local.endsWith(`:${portHex}`)) continue;
      total += Number(fields[fields.length - 1]) || 0;
      queued += Number.parseInt(fields[4].split(":")[1] ?? "0", 16) || 0;
    }
  }
  return readable ? { drops: total, receiveQueueBytes: queued } : null;
}
