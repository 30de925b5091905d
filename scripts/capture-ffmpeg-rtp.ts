/**
 * Records a real ffmpeg RTP/MPEG-TS stream (H.264 + AAC, `-f rtp_mpegts`) from loopback into
 * test/fixtures/ffmpeg-rtp-mpegts.bin, the capture the appliance tests replay through the daemon.
 * File format: a sequence of records, each a 2-byte big-endian length and the RTP packet.
 *
 *   node scripts/capture-ffmpeg-rtp.ts [seconds] [output]
 */
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { writeFileSync } from "node:fs";
import { ffmpegTestStreamArgs } from "../appliance/lab/sources.ts";

const seconds = Number(process.argv[2] ?? 2);
const output = process.argv[3] ?? new URL("../test/fixtures/ffmpeg-rtp-mpegts.bin", import.meta.url).pathname;

const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
const packets: Buffer[] = [];
socket.on("message", (msg) => packets.push(Buffer.from(msg)));
await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
const port = socket.address().port;

const args = ffmpegTestStreamArgs({ seconds, videoKbps: 1000, preset: "veryfast", port });
const ffmpeg = spawn("ffmpeg", args, { stdio: ["ignore", "inherit", "inherit"] });
const code = await new Promise<number | null>((resolve, reject) => {
  ffmpeg.on("error", (error) =>
    reject(new Error(`cannot run ffmpeg (apt-get install ffmpeg): ${error.message}`, { cause: error })),
  );
  ffmpeg.on("exit", resolve);
});
await new Promise((resolve) => setTimeout(resolve, 200));
socket.close();
if (code !== 0) throw new Error(`ffmpeg exited with ${code}`);

const records = packets.map((p) => {
  const header = Buffer.alloc(2);
  header.writeUInt16BE(p.length);
  return Buffer.concat([header, p]);
});
writeFileSync(output, Buffer.concat(records));
const sizes = new Set(packets.map((p) => p.length));
console.log(`${packets.length} RTP packets (${[...sizes].join(", ")} bytes) written to ${output}`);
