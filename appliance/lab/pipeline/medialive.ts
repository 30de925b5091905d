/**
 * The MediaLive + MediaPackage stand-in: what the appliances return on a contributor's RTP output is
 * decoded and encoded again by ffmpeg (320x180 H.264 + AAC) and packaged as HLS with one-second
 * segments. Like MediaLive over input loss, it keeps its output timeline running at a constant frame
 * rate (the last picture repeats, audio is filled with silence), so a gap in the input during a
 * failover becomes a frozen second in the picture rather than a hole the player stalls on.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseRtp, RtpHeader, RtpStatus } from "../../wire/rtp.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import type { StreamSession } from "./mediaconnect.ts";
import { startTool, type Tool } from "./processes.ts";

/** Seconds per HLS segment; the player's buffer is a few of them. */
export const SEGMENT_SECONDS = 1;
/** How the dashboard's player plays it: this many segments behind the live edge, its buffer against a gap. */
export const PLAYER = { segmentSeconds: SEGMENT_SECONDS, liveSyncSegments: 5 };
const FINISH_MS = 3000;

export interface Rendition {
  readonly session: StreamSession;
  /** URL path of the playlist, under the lab's HTTP server. */
  readonly playlist: string;
  readonly dir: string;
  readonly packager: Tool;
  /** Bytes of TS handed to the packager. */
  bytesIn: number;
  ended: boolean;
}

/** Segments listed in a rendition's playlist now (0 before the packager wrote one). */
export function segmentsListed(rendition: Rendition): number {
  const file = path.join(rendition.dir, "index.m3u8");
  return existsSync(file) ? (readFileSync(file, "utf8").match(/#EXTINF/g)?.length ?? 0) : 0;
}

export function packagerArgs(dir: string): string[] {
  return [
    ...["-hide_banner", "-loglevel", "error"],
    ...["-fflags", "+discardcorrupt", "-probesize", "500000", "-analyzeduration", "1500000"],
    ...["-f", "mpegts", "-i", "pipe:0", "-map", "0:v:0", "-map", "0:a:0?"],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-threads", "1"],
    ...["-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-b:v", "400k", "-pix_fmt", "yuv420p"],
    ...["-fps_mode", "cfr", "-r", "25"],
    ...["-c:a", "aac", "-b:a", "64k", "-ac", "1", "-af", "aresample=async=1000"],
    ...["-f", "hls", "-hls_time", String(SEGMENT_SECONDS), "-hls_list_size", "10"],
    ...["-hls_flags", "delete_segments+independent_segments+temp_file"],
    ...["-hls_segment_filename", path.join(dir, "segment-%05d.ts"), path.join(dir, "index.m3u8")],
  ];
}

export class MediaLiveStandIn {
  readonly renditions: Rendition[] = [];
  private readonly lab: Lab;
  private readonly hlsDir: string;
  private readonly logDir: string;
  private readonly byFlow = new Map<Flow, Rendition>();
  private readonly rtp = new RtpHeader();
  private readonly listener = (flow: Flow, payload: Buffer) => this.receive(flow, payload);

  constructor(options: { lab: Lab; hlsDir: string; logDir: string }) {
    this.lab = options.lab;
    this.hlsDir = options.hlsDir;
    this.logDir = options.logDir;
    this.lab.deliveryListeners.add(this.listener);
  }

  /** A contributor went on air: a packager for its output, in `<hls>/<label>/<session>/`. */
  begin(session: StreamSession): Rendition {
    const relative = `${session.contributor.label}/${session.number}`;
    const dir = path.join(this.hlsDir, relative);
    mkdirSync(dir, { recursive: true });
    const packager = startTool(
      "ffmpeg",
      packagerArgs(dir),
      { dir: this.logDir, name: `medialive-${session.contributor.label}` },
      { stdin: "pipe" },
    );
    packager.child.stdin?.on("error", () => {}); // a packager that died is reported by its exit below
    const rendition: Rendition = {
      session,
      playlist: `/hls/${relative}/index.m3u8`,
      dir,
      packager,
      bytesIn: 0,
      ended: false,
    };
    void packager.exited.then((code) => {
      if (!rendition.ended) this.lab.event(`packager of ${relative} exited (${code}) while on air`);
    });
    this.renditions.push(rendition);
    this.byFlow.set(session.source.flow, rendition);
    return rendition;
  }

  /** The contributor went off air: the packager finishes its playlist and leaves. */
  end(session: StreamSession): void {
    const rendition = this.byFlow.get(session.source.flow);
    if (!rendition || rendition.ended) return;
    rendition.ended = true;
    this.byFlow.delete(session.source.flow);
    rendition.packager.child.stdin?.end();
    setTimeout(() => rendition.packager.stop(), FINISH_MS).unref();
  }

  /** The live rendition of a contributor, if it is on air. */
  liveRendition(label: string): Rendition | undefined {
    return this.renditions.findLast((r) => !r.ended && r.session.contributor.label === label);
  }

  stop(): void {
    this.lab.deliveryListeners.delete(this.listener);
    for (const rendition of this.renditions) {
      rendition.ended = true;
      rendition.packager.stop();
    }
    this.byFlow.clear();
  }

  private receive(flow: Flow, payload: Buffer): void {
    const rendition = this.byFlow.get(flow);
    if (!rendition) return;
    if (parseRtp(payload, 0, payload.length, this.rtp) !== RtpStatus.ok) return;
    const ts = payload.subarray(this.rtp.payloadOffset, this.rtp.payloadOffset + this.rtp.payloadLength);
    rendition.bytesIn += ts.length;
    rendition.packager.child.stdin?.write(ts);
  }
}
