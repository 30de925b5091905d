/**
 * The program player: hls.js on the MediaLive stand-in's live HLS, a few segments behind the live
 * edge (that margin is the player's buffer), recovering from network and media errors by itself. It
 * keeps count of stalls (the picture not advancing while it should play) and the longest one, shown
 * under the picture and in its data attributes.
 */
import Hls from "hls.js";

/** A pause in playback shorter than this is jitter, not a stall. */
const STALL_MIN_SECONDS = 0.3;
const WATCH_MS = 100;

export interface PlayerStats {
  currentTime: number;
  bufferedAhead: number;
  decodedFrames: number;
  droppedFrames: number;
  stalls: number;
  longestStallSeconds: number;
}

export class Player {
  private readonly video: HTMLVideoElement;
  private readonly overlay: HTMLElement;
  private readonly liveSyncSegments: number;
  private hls: Hls | null = null;
  /** What it plays: a playlist, null for off air, undefined before it was first told. */
  private url: string | null | undefined = undefined;
  private lastTime = -1;
  private stalledSince = 0;
  private stalls = 0;
  private longest = 0;

  constructor(video: HTMLVideoElement, overlay: HTMLElement, liveSyncSegments: number) {
    this.video = video;
    this.overlay = overlay;
    this.liveSyncSegments = liveSyncSegments;
    video.muted = true;
    setInterval(() => this.watch(), WATCH_MS);
  }

  /** Plays `url` (a no-op when it already does); null shows the picture as off air. */
  play(url: string | null, offAirText = "off air"): void {
    if (url === this.url && (url !== null || this.overlay.textContent === offAirText)) return;
    this.url = url;
    this.hls?.destroy();
    this.hls = null;
    this.lastTime = -1;
    this.stalledSince = 0;
    if (!url) {
      this.overlay.textContent = offAirText;
      this.overlay.hidden = false;
      return;
    }
    this.overlay.textContent = "loading…";
    this.overlay.hidden = false;
    if (!Hls.isSupported()) {
      this.overlay.textContent = "this browser has no Media Source Extensions: HLS cannot play here";
      return;
    }
    const hls = new Hls({
      liveSyncDurationCount: this.liveSyncSegments,
      liveMaxLatencyDurationCount: this.liveSyncSegments * 3,
      maxLiveSyncPlaybackRate: 1,
      backBufferLength: 10,
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal || this.hls !== hls) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else setTimeout(() => this.hls === hls && hls.startLoad(), 1000);
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
    this.hls = hls;
    this.video.play().catch(() => {}); // an autoplay refusal leaves it paused, as the page then shows
  }

  private watch(): void {
    const video = this.video;
    if (!this.url) return;
    const now = performance.now();
    if (video.currentTime !== this.lastTime) {
      if (this.lastTime >= 0) this.overlay.hidden = true;
      if (this.stalledSince > 0) {
        const stalled = (now - this.stalledSince) / 1000;
        if (stalled >= STALL_MIN_SECONDS) {
          this.stalls++;
          this.longest = Math.max(this.longest, stalled);
        }
      }
      this.stalledSince = 0;
      this.lastTime = video.currentTime;
    } else if (this.lastTime > 0 && this.stalledSince === 0) {
      // It had started playing and now does not advance: a stall until it moves again.
      this.stalledSince = now;
    }
    if (video.paused && this.lastTime > 0) video.play().catch(() => {}); // refused now, asked again on the next watch()
  }

  stats(): PlayerStats {
    const video = this.video;
    const quality = video.getVideoPlaybackQuality();
    let ahead = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= video.currentTime && video.currentTime <= video.buffered.end(i))
        ahead = video.buffered.end(i) - video.currentTime;
    }
    const ongoing = this.stalledSince > 0 ? (performance.now() - this.stalledSince) / 1000 : 0;
    return {
      currentTime: video.currentTime,
      bufferedAhead: ahead,
      decodedFrames: quality.totalVideoFrames,
      droppedFrames: quality.droppedVideoFrames,
      stalls: this.stalls,
      longestStallSeconds: Math.max(this.longest, ongoing >= STALL_MIN_SECONDS ? ongoing : 0),
    };
  }
}
