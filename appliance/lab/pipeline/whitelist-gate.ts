/**
 * The network side of a MediaConnect source's whitelist: the flow's ingest port (UDP, SRT rides on it)
 * takes datagrams only from addresses the source CIDRs allow. An admitted caller is relayed, both
 * ways, to the SRT listener that serves it (one relay socket per caller address and port, as a NAT
 * would); anything else is dropped and counted per source address, so the SRT handshake of a refused
 * contributor never reaches libsrt and it keeps retrying, as it does against a real flow.
 */
import dgram from "node:dgram";

export interface GateOptions {
  address: string;
  port: number;
  /** Where the caller at `address` is served (an SRT listener's port on the gate's address), or null to refuse. */
  route: (address: string) => number | null;
}

interface Relay {
  readonly socket: dgram.Socket;
  readonly callerAddress: string;
  readonly upstreamPort: number;
}

export class WhitelistGate {
  private readonly options: GateOptions;
  private readonly socket = dgram.createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  private readonly relays = new Map<string, Relay>();
  /** Datagrams refused, by source address. */
  readonly refused = new Map<string, number>();
  /** When each address was last refused (performance.now() ms). */
  readonly lastRefusedAt = new Map<string, number>();
  /** Datagrams relayed towards the listeners, by source address. */
  readonly admitted = new Map<string, number>();

  constructor(options: GateOptions) {
    this.options = options;
    this.socket.on("message", (msg, from) => this.fromCaller(msg, from));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(this.options.port, this.options.address, () => {
        this.socket.off("error", reject);
        resolve();
      });
    });
  }

  /** The ingest port (the one asked for, or the kernel's pick for 0). */
  port(): number {
    return this.socket.address().port;
  }

  stop(): void {
    for (const address of new Set([...this.relays.values()].map((r) => r.callerAddress)))
      this.revoke(address);
    this.socket.close();
  }

  /** Cuts every relay of `address` now (its whitelist entry was withdrawn). */
  revoke(address: string): void {
    for (const [key, relay] of this.relays) {
      if (relay.callerAddress !== address) continue;
      relay.socket.close();
      this.relays.delete(key);
    }
  }

  private fromCaller(msg: Buffer, from: dgram.RemoteInfo): void {
    const upstreamPort = this.options.route(from.address);
    if (upstreamPort === null) {
      this.refused.set(from.address, (this.refused.get(from.address) ?? 0) + 1);
      this.lastRefusedAt.set(from.address, performance.now());
      this.revoke(from.address);
      return;
    }
    this.admitted.set(from.address, (this.admitted.get(from.address) ?? 0) + 1);
    const key = `${from.address}:${from.port}`;
    let relay = this.relays.get(key);
    if (relay && relay.upstreamPort !== upstreamPort) {
      relay.socket.close();
      relay = undefined;
    }
    if (!relay) {
      const socket = dgram.createSocket("udp4");
      socket.on("message", (reply) => this.socket.send(reply, from.port, from.address));
      socket.on("error", () => socket.close());
      socket.bind(0, this.options.address);
      relay = { socket, callerAddress: from.address, upstreamPort };
      this.relays.set(key, relay);
    }
    relay.socket.send(msg, upstreamPort, this.options.address);
  }
}
