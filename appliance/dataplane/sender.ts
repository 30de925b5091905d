/**
 * How an allowed datagram goes back to the GWLB. AWS does not document whether GWLB accepts a return
 * from source port 6081 (a plain UDP socket) or only from the flow's own source port (what raw-socket
 * appliances do); see docs/gwlb-wire-contract.md. So there are two senders, chosen by `--sender`:
 *
 *   udp  through the receiving socket: source port 6081, no capability needed. On the dgram backend it is
 *        UdpSocketSender below; on the native backend the addon's sendmmsg on the same socket.
 *   raw  through a raw IPv4 socket (IP_HDRINCL, CAP_NET_RAW) with a new outer IPv4/UDP header whose source
 *        port is the one GWLB sent the datagram from; native backend only (appliance/native/).
 */
import type { Socket } from "node:dgram";
import { Counter } from "./counters.ts";

export interface PacketSender {
  /** Sends `buf` unchanged to the GWLB node at `address`, port `port`. */
  send(buf: Buffer, address: string, port: number): void;
}

export const SENDER_KINDS = ["udp", "raw"] as const;
export type SenderKind = (typeof SENDER_KINDS)[number];

/** Returns through the receiving socket itself, so the outer source port is the one we listen on. */
export class UdpSocketSender implements PacketSender {
  private readonly socket: Socket;
  private readonly counters: Float64Array;

  constructor(socket: Socket, counters: Float64Array) {
    this.socket = socket;
    this.counters = counters;
    // No per-send callback (a JS call per packet back from the socket layer): a failed send surfaces as
    // the socket's "error" event, which takes it back off the forwarded count.
    socket.on("error", () => {
      this.counters[Counter.sendErrors]++;
      this.counters[Counter.forwarded]--;
    });
  }

  send(buf: Buffer, address: string, port: number): void {
    this.counters[Counter.forwarded]++;
    this.counters[Counter.bytesForwarded] += buf.length;
    this.socket.send(buf, port, address);
  }
}

/**
 * Addresses handed to the sender are always the IP literal the datagram came from, so resolution is
 * the identity. Node's default lookup validates the string and defers to the next tick on every send.
 */
export function literalLookup(
  address: string,
  _family: unknown,
  callback: (error: Error | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(":") ? 6 : 4);
}
