/**
 * The MediaConnect stand-in's whitelist gate over real loopback sockets: an admitted caller is relayed
 * to its listener and the listener's answers come back to the caller from the ingest port; a refused
 * caller's datagrams never reach a listener and are counted; a withdrawn caller is cut at once.
 */
import dgram from "node:dgram";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { WhitelistGate } from "../../appliance/lab/pipeline/whitelist-gate.ts";

const GATE = "127.0.15.5";
const ADMITTED = "127.0.15.21";
const REFUSED = "127.0.15.22";

async function socket(address: string, port = 0): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(port, address, () => resolve()));
  return s;
}

const next = (s: dgram.Socket) => once(s, "message") as Promise<[Buffer, dgram.RemoteInfo]>;

describe("whitelist gate", () => {
  const open: { close(): void }[] = [];
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  it("relays an admitted caller both ways, drops and counts a refused one, and cuts a withdrawn one", async () => {
    const listener = await socket(GATE);
    const allowed = new Set([ADMITTED]);
    const gate = new WhitelistGate({
      address: GATE,
      port: 0,
      route: (address) => (allowed.has(address) ? listener.address().port : null),
    });
    await gate.start();
    const gatePort = gate.port();
    const caller = await socket(ADMITTED);
    const stranger = await socket(REFUSED);
    open.push(listener, caller, stranger, { close: () => gate.stop() });

    const heard = next(listener);
    caller.send(Buffer.from("handshake"), gatePort, GATE);
    const [msg, relay] = await heard;
    expect(msg.toString()).toBe("handshake");
    expect(relay.address).toBe(GATE); // the listener talks to the gate, which answers for the caller

    const answered = next(caller);
    listener.send(Buffer.from("induction"), relay.port, relay.address);
    const [answer, from] = await answered;
    expect(answer.toString()).toBe("induction");
    expect(from).toMatchObject({ address: GATE, port: gatePort });

    let leaked = 0;
    listener.on("message", () => leaked++);
    for (let i = 0; i < 5; i++) stranger.send(Buffer.from("let me in"), gatePort, GATE);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(leaked).toBe(0);
    expect(gate.refused.get(REFUSED)).toBe(5);
    expect(gate.admitted.get(ADMITTED)).toBe(1);

    allowed.delete(ADMITTED);
    gate.revoke(ADMITTED);
    caller.send(Buffer.from("still there?"), gatePort, GATE);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(leaked).toBe(0);
    expect(gate.refused.get(ADMITTED)).toBe(1);
  });
});
