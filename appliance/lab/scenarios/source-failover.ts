import { continuityScenario, contributorStream } from "./continuity.ts";

const PRIMARY = { ssrc: 0x0a110001, sequence: 10_000, muxer: { psiVersion: 3 } } as const;
const BACKUP = {
  ssrc: 0x0b220002,
  sequence: 40_000,
  muxer: { pids: { pmt: 0x1100, video: 0x300, audio: 0x301 }, psiVersion: 5 },
} as const;

/**
 * A MediaConnect source failover: two contributors (each its own SSRC, sequence and program) feed the
 * flow and both keep running; the flow's output switches from the primary to the backup, back, and
 * to the backup again. Every switch is an SSRC handover on an unchanged 5-tuple.
 */
export const sourceFailover = continuityScenario({
  name: "source-failover",
  description:
    "the flow switches between two contributors mid-run (primary, backup, primary, backup), as a MediaConnect source failover does; each switch costs at most 100 ms and the attacks alongside are all refused",
  flowIndex: 99,
  first: (bitrate) => contributorStream(bitrate, PRIMARY),
  switches: [
    {
      at: 0.25,
      kind: "new-ssrc",
      what: "failover to the backup contributor",
      runsFrom: "start",
      stream: (bitrate) => contributorStream(bitrate, BACKUP),
    },
    {
      at: 0.5,
      kind: "new-ssrc",
      what: "back to the primary contributor",
      runsFrom: "start",
      stream: (bitrate) => contributorStream(bitrate, PRIMARY),
    },
    {
      at: 0.75,
      kind: "new-ssrc",
      what: "failover to the backup again",
      runsFrom: "start",
      stream: (bitrate) => contributorStream(bitrate, BACKUP),
    },
  ],
});
