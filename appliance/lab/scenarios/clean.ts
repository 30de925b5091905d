import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Lab } from "../lab.ts";
import { ffprobeAvailable } from "../sources.ts";
import {
  beginClean,
  endClean,
  expectNoDrops,
  type Progress,
  result,
  runFor,
  type Scenario,
} from "./scenario.ts";

export const clean: Scenario = {
  name: "clean",
  description:
    "clean RTP/MPEG-TS streams at the seed's load: nothing may be dropped, delayed out of order or altered",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 15, 5);
    // ffprobe can only judge real content: the synthetic muxer's elementary streams are filler.
    const probe = lab.options.source === "ffmpeg" && ffprobeAvailable();
    if (probe) sources[0].stats!.keepTs = [];
    await runFor(lab, duration, progress);
    const { totals, drops } = await endClean(lab, sources, before);
    const failures: string[] = [];
    if (totals.lost !== 0) failures.push(`${totals.lost} clean packets lost`);
    expectNoDrops(drops, failures);
    if (totals.tsErrors !== 0) failures.push(`${totals.tsErrors} TS continuity errors in what arrived`);
    if (totals.duplicates !== 0) failures.push(`${totals.duplicates} duplicated packets`);
    let ffprobe = probe
      ? ""
      : lab.options.source === "ffmpeg"
        ? "ffprobe not installed"
        : "synthetic source: run with --source ffmpeg";
    if (probe) {
      const file = path.join(lab.options.runDir, "received-stream-1.ts");
      writeFileSync(file, Buffer.concat(sources[0].stats!.keepTs ?? []));
      const run = spawnSync(
        "ffprobe",
        ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file],
        {
          encoding: "utf8",
        },
      );
      ffprobe =
        run.status === 0 && run.stderr.trim() === ""
          ? `ok (${file})`
          : `errors: ${run.stderr.trim().slice(0, 300)}`;
      if (!ffprobe.startsWith("ok")) failures.push(`ffprobe on the received stream: ${ffprobe}`);
    }
    return result(clean, started, lab, {
      clean: totals,
      drops,
      failures,
      details: { streams: sources.length, bitrateMbps: lab.options.bitrate / 1e6, ffprobe },
    });
  },
};
