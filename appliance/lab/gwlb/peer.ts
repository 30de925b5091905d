/**
 * The GWLB side of the wire for one appliance, without the emulator's flows and health checks: sends
 * GENEVE datagrams as they are given and collects what comes back on :6081.
 */
import dgram from "node:dgram";
import { GENEVE_PORT } from "../../../contracts/gwlb.ts";

export class GwlbPeer {
  readonly socket: dgram.Socket;
  readonly received: Buffer[] = [];
  /** Outer UDP source port of each received datagram. */
  readonly sourcePorts: number[] = [];
  readonly address: string;
  private waiters: (() => void)[] = [];

  /** A peer that is not listening yet: `listen` binds it (what `bind` does in one step). */
  constructor(address: string) {
    this.address = address;
    this.socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    this.socket.on("message", (msg, rinfo) => {
      this.received.push(msg);
      this.sourcePorts.push(rinfo.port);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async bind(address: string, port = GENEVE_PORT): Promise<GwlbPeer> {
    const peer = new GwlbPeer(address);
    await peer.listen(port);
    return peer;
  }

  listen(port = GENEVE_PORT): Promise<void> {
    return new Promise<void>((resolve) => this.socket.bind(port, this.address, resolve));
  }

  send(datagram: Buffer, appliance: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(datagram, GENEVE_PORT, appliance, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** Waits until `count` datagrams have come back in all, or the timeout passes; returns how many did. */
  async waitForCount(count: number, timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.length;
  }

  /** Forgets what came back, for the next test on the same peer. */
  clear(): void {
    this.received.length = 0;
    this.sourcePorts.length = 0;
  }

  close(): void {
    this.socket.close();
  }
}
