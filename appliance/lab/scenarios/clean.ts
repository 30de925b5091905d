import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Lab } from "../lab.ts";
import { ffprobeAvailable } from "../sources.ts";
import { defineCleanScenario } from "./scenario.ts";

export interface CleanDetails {
  streams: number;
  bitrateMbps: number;
  /** What ffprobe made of the first stream as received, or why it did not look. */
  ffprobe: string;
}

/** ffprobe's verdict on the TS that arrived: "ok (file)", or its errors. */
function probeReceived(lab: Lab, ts: Buffer[]): string {
  const file = path.join(lab.options.runDir, "received-stream-1.ts");
  writeFileSync(file, Buffer.concat(ts));
  const run = spawnSync(
    "ffprobe",
    ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file],
    {
      encoding: "utf8",
    },
  );
  return run.status === 0 && run.stderr.trim() === ""
    ? `ok (${file})`
    : `errors: ${run.stderr.trim().slice(0, 300)}`;
}

export const clean = defineCleanScenario<CleanDetails>({
  name: "clean",
  description:
    "clean RTP/MPEG-TS streams at the seed's load: nothing may be dropped, delayed out of order or altered",
  seconds: { normal: 15, quick: 5 },
  cleanOnly: true,
  async run({ lab, sources, play }) {
    // ffprobe can only judge real content: the synthetic muxer's elementary streams are filler.
    const probe = lab.options.source === "ffmpeg" && ffprobeAvailable();
    if (probe) sources[0].stats!.keepTs = [];
    await play();
    return {
      verdict: ({ totals, failures }) => {
        if (totals.lost !== 0) failures.push(`${totals.lost} clean packets lost`);
        if (totals.tsErrors !== 0) failures.push(`${totals.tsErrors} TS continuity errors in what arrived`);
        if (totals.duplicates !== 0) failures.push(`${totals.duplicates} duplicated packets`);
        const ffprobe = probe
          ? probeReceived(lab, sources[0].stats!.keepTs ?? [])
          : lab.options.source === "ffmpeg"
            ? "ffprobe not installed"
            : "synthetic source: run with --source ffmpeg";
        if (probe && !ffprobe.startsWith("ok")) failures.push(`ffprobe on the received stream: ${ffprobe}`);
        return { details: { streams: sources.length, bitrateMbps: lab.options.bitrate / 1e6, ffprobe } };
      },
    };
  },
});
