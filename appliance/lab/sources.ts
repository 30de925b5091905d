/**
 * What the lab sends: clean synthetic streams, a real ffmpeg encoder, and the attack classes. A source
 * is a flow plus a function that makes its next RTP packet; the lab's pump sends each on its schedule.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import type { Flow } from "./gwlb/emulator.ts";
import { SyntheticStream } from "./media/synthetic-stream.ts";
import type { StreamStats } from "./sink/sink.ts";

export interface Source {
  readonly flow: Flow;
  readonly stats: StreamStats | null;
  /** Milliseconds between packets; 0 = pushed by an external producer (ffmpeg), not paced by the pump. */
  readonly intervalMs: number;
  /** RTP SSRC of the stream's own packets (0 for sources without statistics). */
  readonly ssrc: number;
  nextDue: number;
  sent: number;
  /** The RTP sequence number of the next packet, for sources that number their own. */
  readonly nextSequence?: () => number;
  next(nowMs: number): Buffer | null;
  stop?(): void;
}

export function syntheticSource(
  flow: Flow,
  stats: StreamStats,
  bitrate: number,
  ssrc: number,
  startMs: number,
): Source {
  const stream = new SyntheticStream({ bitrate, ssrc });
  return {
    flow,
    stats,
    ssrc,
    intervalMs: stream.packetIntervalMs,
    nextDue: startMs,
    sent: 0,
    nextSequence: () => stream.rtp.sequence,
    next: (now) => stream.next(now),
  };
}

/**
 * The packets of a well-formed synthetic stream of its own SSRC, each stamped at `clock()`: what an
 * attacker who knows the format sends, or a contributor the scenario adds.
 */
export function wellFormed(ssrc: number, clock: () => number, bitrate = 4_000_000): () => Buffer {
  const stream = new SyntheticStream({ bitrate, ssrc });
  return () => stream.next(clock());
}

/** A generator of attack payloads at a fixed rate. */
export function attackSource(
  flow: Flow,
  ratePerSecond: number,
  startMs: number,
  make: (n: number) => Buffer,
): Source {
  let n = 0;
  return {
    flow,
    stats: null,
    ssrc: 0,
    intervalMs: 1000 / ratePerSecond,
    nextDue: startMs,
    sent: 0,
    next: () => make(n++),
  };
}

export function ffmpegAvailable(): boolean {
  return spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
}

export function ffprobeAvailable(): boolean {
  return spawnSync("ffprobe", ["-version"], { stdio: "ignore" }).status === 0;
}

/**
 * A real encoder: ffmpeg makes H.264 + AAC test content and sends it as RTP/MPEG-TS (`-f rtp_mpegts`)
 * to a loopback port; every packet it sends is handed to `onPacket`, in real time (`-re`).
 */
export const FFMPEG_SSRC = 0x0ff0_0001;

/**
 * ffmpeg's arguments for its test content (a 640x360 test card at 25 fps and a 1 kHz tone) as
 * H.264 + AAC in RTP/MPEG-TS to 127.0.0.1:`port`, in real time: the lab's encoder and the capture
 * behind the daemon tests' fixture.
 */
export function ffmpegTestStreamArgs(options: {
  seconds: number;
  videoKbps: number;
  preset: "ultrafast" | "veryfast";
  port: number;
  ssrc?: number;
}): string[] {
  return [
    ...["-hide_banner", "-loglevel", "error", "-re"],
    ...["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"],
    ...["-t", String(options.seconds)],
    ...["-c:v", "libx264", "-preset", options.preset, "-tune", "zerolatency"],
    ...["-b:v", `${options.videoKbps}k`, "-g", "25"],
    ...["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"],
    // The rtp_mpegts muxer ignores -ssrc (its RTP layer picks a random one): the SSRC goes to that layer.
    ...(options.ssrc === undefined ? [] : ["-rtp_muxer_options", `ssrc=${options.ssrc}`]),
    ...["-f", "rtp_mpegts", `rtp://127.0.0.1:${options.port}?pkt_size=1328`],
  ];
}

export async function startFfmpeg(
  seconds: number,
  bitrateKbps: number,
  onPacket: (packet: Buffer) => void,
): Promise<{ process: ChildProcess; stop(): void }> {
  const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
  socket.on("message", (msg) => onPacket(msg));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  const child = spawn(
    "ffmpeg",
    ffmpegTestStreamArgs({ seconds, videoKbps: bitrateKbps, preset: "ultrafast", ssrc: FFMPEG_SSRC, port }),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  child.once("exit", () => socket.close());
  return {
    process: child,
    stop: () => {
      child.kill("SIGKILL");
    },
  };
}
