/**
 * The fallback receive loop: Node's own UDP socket, one JavaScript callback and one send per datagram
 * (what the appliance ran before the native addon, and what it runs when the addon cannot load).
 */
import dgram from "node:dgram";
import { performance } from "node:perf_hooks";
import { literalLookup, UdpSocketSender } from "../sender.ts";
import {
  inspectDatagram,
  type ListeningInfo,
  type LoopContext,
  type LoopOptions,
  type ReceiveLoop,
  recordProcessing,
  Verdict,
} from "./receive-loop.ts";

export function startDgramLoop(
  options: LoopOptions,
  context: LoopContext,
  onListening: (info: ListeningInfo) => void,
): ReceiveLoop {
  if (options.raw) throw new Error("the raw sender needs the native I/O backend");
  const { counters } = context;
  const socket = dgram.createSocket({
    type: options.host.includes(":") ? "udp6" : "udp4",
    reusePort: options.reusePort,
    recvBufferSize: options.socketBufferBytes,
    sendBufferSize: options.socketBufferBytes,
    lookup: literalLookup,
  } as dgram.SocketOptions);
  const sender = new UdpSocketSender(socket, counters);
  const returnPort = options.returnPort;

  socket.on("message", (msg, rinfo) => {
    const start = performance.now();
    const verdict = inspectDatagram(context, msg, msg.length, start, context.onError);
    if (verdict === Verdict.oversize) return;
    if (verdict === Verdict.forward) sender.send(msg, rinfo.address, returnPort);
    recordProcessing(counters, performance.now() - start);
  });
  socket.on("error", (error) => context.onError(`socket: ${error.message}`));
  socket.bind({ address: options.host, port: options.port, exclusive: true }, () => {
    onListening({
      address: socket.address().address,
      port: socket.address().port,
      receiveBuffer: socket.getRecvBufferSize(),
      sendBuffer: socket.getSendBufferSize(),
    });
  });
  return { backend: "dgram", close: (done) => socket.close(done) };
}
