/** The lab's real encoder: ffmpeg sends its RTP packets under the SSRC the lab's statistics expect. */
import { describe, expect, it } from "vitest";
import { FFMPEG_SSRC, ffmpegAvailable, startFfmpeg } from "../../appliance/lab/sources.ts";

describe.runIf(ffmpegAvailable() || process.env.CI)("ffmpeg source", () => {
  it("hands over RTP/MPEG-TS packets carrying FFMPEG_SSRC", async () => {
    const packets: Buffer[] = [];
    const encoder = await startFfmpeg(1, 2000, (packet) => packets.push(Buffer.from(packet)));
    await new Promise((resolve) => encoder.process.once("exit", resolve));
    expect(packets.length).toBeGreaterThan(10);
    for (const packet of packets) {
      expect(packet[0] >> 6).toBe(2);
      expect(packet.readUInt32BE(8)).toBe(FFMPEG_SSRC);
      expect(packet[12]).toBe(0x47);
    }
  }, 20_000);
});
