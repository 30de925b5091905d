import { continuityScenario, contributorStream } from "./continuity.ts";

const SSRC_BEFORE = 0x0e0c0001;
const SSRC_AFTER = 0x0e0c0002;

/**
 * An encoder restarts twice mid-run: first with a new SSRC, sequence and program (PIDs, PSI version),
 * as a restarted encoder process does; later keeping its SSRC but resetting its sequence and counters,
 * as an encoder that restarts its output does.
 */
export const encoderRestart = continuityScenario({
  name: "encoder-restart",
  description:
    "a contributor's encoder restarts mid-run, once with a new SSRC, sequence and PMT, once keeping its SSRC but resetting its sequence; each restart costs at most its bound and the attacks alongside are all refused",
  flowIndex: 98,
  first: (bitrate) =>
    contributorStream(bitrate, {
      ssrc: SSRC_BEFORE,
      sequence: 50_000,
      muxer: { pids: { pmt: 0x1000, video: 0x100, audio: 0x101 }, psiVersion: 0 },
    }),
  switches: [
    {
      at: 0.33,
      kind: "new-ssrc",
      what: "restart with a new SSRC, sequence and PMT version (new PIDs)",
      runsFrom: "switch",
      stream: (bitrate) =>
        // Close to 0, so that the later restart to 0 sends sequence numbers this segment already
        // sent, at every duration: the report must still tell those new packets from replays.
        contributorStream(bitrate, {
          ssrc: SSRC_AFTER,
          sequence: 100,
          muxer: { pids: { pmt: 0x1010, video: 0x200, audio: 0x201 }, psiVersion: 1 },
        }),
    },
    {
      at: 0.66,
      kind: "same-ssrc",
      what: "restart keeping the SSRC, sequence reset to 0, counters reset",
      runsFrom: "switch",
      stream: (bitrate) =>
        contributorStream(bitrate, {
          ssrc: SSRC_AFTER,
          sequence: 0,
          muxer: { pids: { pmt: 0x1010, video: 0x200, audio: 0x201 }, psiVersion: 2 },
        }),
    },
  ],
});
