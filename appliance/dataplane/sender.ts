/**
 * How an allowed datagram goes back to the GWLB. The send path sits behind this one interface because
 * AWS does not document whether GWLB accepts a return from source port 6081 (a plain UDP socket) or
 * only from the flow's own source port (what raw-socket appliances do); see DESIGN.md.
 */
import type { Socket } from "node:dgram";
import { Counter } from "./counters.ts";

export interface PacketSender {
  /** Sends `buf` unchanged to the GWLB node at `address`, port `port`. */
  send(buf: Buffer, address: string, port: number): void;
}

export const SENDER_KINDS = ["udp"] as const;
export type SenderKind = (typeof SENDER_KINDS)[number];

/** Returns through the receiving socket itself, so the outer source port is the one we listen on. */
export class UdpSocketSender implements PacketSender {
  private readonly socket: Socket;
  private readonly counters: Float64Array;
  private readonly onSent: (error: Error | null, bytes: number) => void;

  constructor(socket: Socket, counters: Float64Array) {
    this.socket = socket;
    this.counters = counters;
    // One callback for every send: a closure per packet would allocate on the hot path.
    this.onSent = (error, bytes) => {
      if (error) this.counters[Counter.sendErrors]++;
      else {
        this.counters[Counter.forwarded]++;
        this.counters[Counter.bytesForwarded] += bytes;
      }
    };
  }

  send(buf: Buffer, address: string, port: number): void {
    this.socket.send(buf, port, address, this.onSent);
  }
}
