/**
 * A contributor: a real encoder in the field. ffmpeg makes a test pattern with the contributor's name
 * and a burnt-in clock, and a tone (H.264 + AAC in MPEG-TS); srt-live-transmit (libsrt) calls the
 * MediaConnect ingest from the contributor's own loopback address and keeps calling while it is
 * refused, as an encoder in the field does. Either process dying restarts both.
 */
import { existsSync } from "node:fs";
import { startTool, type Tool } from "./processes.ts";

export interface ContributorSpec {
  label: string;
  /** Loopback address the SRT caller binds (its whitelist identity). */
  address: string;
  /** Tone frequency in Hz, so each contributor can be told apart by ear too. */
  toneHz: number;
}

/** One TS chunk per SRT message: 7 × 188 bytes, what MediaConnect carries per RTP packet. */
export const TS_CHUNK = 1316;
const FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const RESTART_MS = 1000;

/** ffmpeg's arguments for the contributor's picture and sound, written as MPEG-TS to stdout. */
export function encoderArgs(spec: ContributorSpec, size = "320x180"): string[] {
  // drawtext needs a font file; without one the picture still plays, unlabelled.
  const label = existsSync(FONT)
    ? `,drawtext=fontfile=${FONT}:text='${spec.label}  %{localtime\\:%T}  #%{n}':fontsize=16:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4:x=8:y=h-th-8`
    : "";
  return [
    ...["-hide_banner", "-loglevel", "error", "-nostdin", "-re"],
    ...["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=25${label}`],
    ...["-f", "lavfi", "-i", `sine=frequency=${spec.toneHz}:sample_rate=48000`],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-threads", "1"],
    ...["-g", "25", "-b:v", "400k", "-maxrate", "500k", "-bufsize", "500k", "-pix_fmt", "yuv420p"],
    ...["-c:a", "aac", "-b:a", "64k", "-ac", "1"],
    ...["-f", "mpegts", "-flush_packets", "1", "pipe:1"],
  ];
}

export class Contributor {
  readonly spec: ContributorSpec;
  private readonly ingest: string;
  private readonly logDir: string;
  private encoder: Tool | null = null;
  private caller: Tool | null = null;
  private stopped = true;
  private restartTimer: NodeJS.Timeout | null = null;
  starts = 0;

  constructor(spec: ContributorSpec, ingest: { address: string; port: number }, logDir: string) {
    this.spec = spec;
    this.ingest = `${ingest.address}:${ingest.port}`;
    this.logDir = logDir;
  }

  get running(): boolean {
    return this.encoder !== null;
  }

  start(): void {
    this.stopped = false;
    this.starts++;
    const log = { dir: this.logDir, name: `contributor-${this.spec.label}` };
    const encoder = startTool("ffmpeg", encoderArgs(this.spec), log, { stdout: "pipe" });
    // The caller reads the encoder's stdout directly; conntimeo keeps its retries while refused short.
    const caller = startTool(
      "srt-live-transmit",
      [
        ...["-q", "-a:yes", "-c", String(TS_CHUNK)],
        "file://con",
        `srt://${this.ingest}?mode=caller&adapter=${this.spec.address}&latency=200&conntimeo=1000`,
      ],
      log,
      { stdin: encoder.child.stdout! },
    );
    this.encoder = encoder;
    this.caller = caller;
    const restart = () => {
      if (this.encoder !== encoder) return;
      encoder.stop();
      caller.stop();
      this.encoder = null;
      this.caller = null;
      if (!this.stopped) this.restartTimer = setTimeout(() => this.start(), RESTART_MS);
    };
    void encoder.exited.then(restart);
    void caller.exited.then(restart);
  }

  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.encoder?.stop();
    this.caller?.stop();
    this.encoder = null;
    this.caller = null;
  }
}
