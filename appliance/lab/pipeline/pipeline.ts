/**
 * The whole contribution chain beside the lab's synthetic streams: SRT contributors → the MediaConnect
 * stand-in (whitelist by the contributor schedule) → RTP into the GWLB emulator → appliances → the
 * MediaLive/MediaPackage stand-in → HLS in the run directory, which the lab's HTTP server serves.
 */
import path from "node:path";
import { cidrContains, parseCidr } from "../../../contracts/cidr.ts";
import type { ContributorEntry } from "../../../contracts/contributor-schedule.ts";
import type { Lab } from "../lab.ts";
import type { ContributorSample } from "../web/protocol.ts";
import { Contributor, type ContributorSpec } from "./contributor.ts";
import { MediaConnectStandIn } from "./mediaconnect.ts";
import { MediaLiveStandIn, PLAYER, segmentsListed } from "./medialive.ts";

export const INGEST = { address: "127.0.0.5", port: 5000 };

/** Two studios on the whitelist from the start and a remote contributor waiting for its slot. */
export const CONTRIBUTORS: readonly ContributorSpec[] = [
  { label: "studio-a", address: "127.0.0.21", toneHz: 440 },
  { label: "studio-b", address: "127.0.0.22", toneHz: 660 },
  { label: "remote-c", address: "127.0.0.23", toneHz: 880 },
];

/** The flow's VPC interface (inside every MediaConnect set the lab's policies allow) → the MediaLive input. */
export const OUTPUT = { src: "10.0.1.5", dst: "10.0.11.20", firstPort: 5080 };

/**
 * The lab's contributor schedule: the first contributor always on; the second until `handoverAt` and
 * the third from then (a time-boxed hand-over, as an operator books one). Without a hand-over time the
 * third contributor is not on the list at all.
 */
export function labSchedule(
  contributors: readonly ContributorSpec[],
  handoverAt: Date | null,
): ContributorEntry[] {
  const [first, second, third] = contributors;
  const entry = (c: ContributorSpec, bounds: Partial<ContributorEntry> = {}): ContributorEntry => ({
    cidr: `${c.address}/32`,
    label: c.label,
    ...bounds,
  });
  const out = [entry(first)];
  if (second) out.push(handoverAt ? entry(second, { expiresAt: handoverAt.toISOString() }) : entry(second));
  if (third && handoverAt) out.push(entry(third, { notBefore: handoverAt.toISOString() }));
  return out;
}

export interface PipelineOptions {
  lab: Lab;
  ingest?: { address: string; port: number };
  contributors?: readonly ContributorSpec[];
  /** When the schedule hands the second contributor's slot to the third; null = never. */
  handoverAt?: Date | null;
}

export class Pipeline {
  readonly lab: Lab;
  readonly contributors: Contributor[];
  readonly mediaConnect: MediaConnectStandIn;
  readonly mediaLive: MediaLiveStandIn;
  readonly hlsDir: string;
  readonly ingest: { address: string; port: number };

  constructor(options: PipelineOptions) {
    this.lab = options.lab;
    const logDir = this.lab.options.runDir;
    this.hlsDir = path.join(logDir, "hls");
    this.ingest = options.ingest ?? INGEST;
    const specs = options.contributors ?? CONTRIBUTORS;
    this.contributors = specs.map((spec) => new Contributor(spec, this.ingest, logDir));
    this.mediaLive = new MediaLiveStandIn({ lab: this.lab, hlsDir: this.hlsDir, logDir });
    this.mediaConnect = new MediaConnectStandIn({
      lab: this.lab,
      ingest: this.ingest,
      contributors: specs,
      schedule: labSchedule(specs, options.handoverAt ?? null),
      output: OUTPUT,
      logDir,
      onSession: (session) => this.mediaLive.begin(session),
      onSessionEnd: (session) => this.mediaLive.end(session),
    });
  }

  async start(): Promise<void> {
    await this.mediaConnect.start();
    for (const contributor of this.contributors) contributor.start();
  }

  stop(): void {
    for (const contributor of this.contributors) contributor.stop();
    this.mediaConnect.stop();
    this.mediaLive.stop();
  }

  /**
   * Hands the rotating slot over now: whichever of the second and third contributors is admitted
   * leaves (expiresAt now), the other joins (notBefore now). Returns what was done, or the refusal.
   */
  rotate(now = new Date()): { ok: boolean; message: string } {
    const [, second, third] = this.contributors.map((c) => c.spec);
    if (!second || !third) return { ok: false, message: "the rotation needs three contributors" };
    const [leaving, joining] = this.mediaConnect.admittedBy(second.address)
      ? [second, third]
      : [third, second];
    const covers = (entry: ContributorEntry, c: ContributorSpec) =>
      cidrContains(parseCidr(entry.cidr), parseCidr(c.address));
    const iso = now.toISOString();
    const schedule = [
      ...this.mediaConnect.currentSchedule().filter((e) => !covers(e, leaving) && !covers(e, joining)),
      { cidr: `${leaving.address}/32`, label: leaving.label, expiresAt: iso },
      { cidr: `${joining.address}/32`, label: joining.label, notBefore: iso },
    ];
    const refusal = this.mediaConnect.setSchedule(schedule, now);
    if (refusal) return { ok: false, message: refusal };
    const message = `whitelist rotated: ${leaving.label} out, ${joining.label} in`;
    this.lab.event(message);
    return { ok: true, message };
  }

  view(): ContributorSample[] {
    return this.contributors.map(({ spec }) => {
      const session = this.mediaConnect.liveSession(spec);
      const rendition = this.mediaLive.liveRendition(spec.label);
      // Offered to the player once it can start as far behind the live edge as it is meant to.
      const playlistReady = rendition && segmentsListed(rendition) > PLAYER.liveSyncSegments;
      return {
        label: spec.label,
        address: spec.address,
        state: this.mediaConnect.contributorState(spec),
        source: this.mediaConnect.admittedBy(spec.address)?.name ?? null,
        refusedDatagrams: this.mediaConnect.refusedDatagrams(spec.address),
        session: session?.number ?? null,
        playlist: playlistReady ? rendition.playlist : null,
        stream: session ? session.source.flow.label : null,
        appliance: session && session.source.flow.target >= 0 ? session.source.flow.target + 1 : null,
      };
    });
  }

  /**
   * Resolves once the first contributor's HLS has `segments` segments: the picture is on air (the
   * player is offered it a few segments later, once it can start with its whole buffer).
   */
  async waitForPicture(timeoutMs: number, segments = 2): Promise<boolean> {
    const label = this.contributors[0].spec.label;
    const deadline = this.lab.now() + timeoutMs;
    while (this.lab.now() < deadline) {
      const rendition = this.mediaLive.liveRendition(label);
      if (rendition && segmentsListed(rendition) >= segments) return true;
      await this.lab.sleep(100);
    }
    return false;
  }
}
