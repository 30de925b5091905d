/**
 * The ceiling of Node's own sockets: receive a datagram and send it back to the GENEVE port of its sender,
 * one datagram per callback, nothing else. `node bench/node-echo.ts ADDRESS` prints "ready" once bound.
 */
import dgram from "node:dgram";
import { GENEVE_PORT } from "../contracts/gwlb.ts";

const BUFFER = 32 << 20;
const address = process.argv[2] ?? "127.0.30.2";
const socket = dgram.createSocket({ type: "udp4", recvBufferSize: BUFFER, sendBufferSize: BUFFER });
socket.on("message", (msg, rinfo) => socket.send(msg, GENEVE_PORT, rinfo.address));
socket.bind(GENEVE_PORT, address, () => process.stdout.write("ready\n"));
