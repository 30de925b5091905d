/**
 * The lab's dashboard page. Live, it follows `/events` (server-sent events) and its buttons post to
 * `/api/actions/*`; as lab-report.html it draws the snapshot embedded in the file, with no network.
 */
import type {
  ActionAnswer,
  ContributorSample,
  RunSummary,
  Sample,
  Snapshot,
  TimelineEvent,
} from "../protocol.ts";
import { Charts } from "./charts.ts";
import {
  drawAppliances,
  drawContributors,
  drawHeader,
  drawStreams,
  drawTimeline,
  drawVerdicts,
} from "./panels.ts";
import { Player } from "./player.ts";

declare global {
  interface Window {
    /** Set by lab-report.html: the whole run, drawn without a server. */
    LAB_REPORT?: Snapshot;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector(selector) as T;

const state: {
  samples: Sample[];
  events: TimelineEvent[];
  finished: RunSummary | null;
  mode: Snapshot["mode"];
} = {
  samples: [],
  events: [],
  finished: null,
  mode: "live",
};
const charts = new Charts($("#charts"), () => state.events);
let player: Player | null = null;
/** The contributor the viewer picked; without a pick the picture follows the first one on air. */
let picked: string | null = null;

function program(contributors: readonly ContributorSample[]): ContributorSample | undefined {
  const playable = contributors.filter((c) => c.state === "live" && c.playlist);
  return playable.find((c) => c.label === picked) ?? playable[0];
}

function drawPicture(sample: Sample): void {
  if (!player) return;
  const current = program(sample.contributors);
  player.play(
    current?.playlist ?? null,
    sample.contributors.length ? "no contributor on air" : "no contribution pipeline in this run",
  );
  $<HTMLButtonElement>("#rotate").disabled = sample.contributors.length === 0;
  $("#program-name").textContent = current
    ? `${current.label} via appliance ${current.appliance ?? "-"} (session ${current.session})`
    : "";
  $("#stream-picker").innerHTML = sample.contributors
    .filter((c) => c.state === "live" && c.playlist)
    .map(
      (c) =>
        `<button type="button" data-pick="${c.label}" class="${c === current ? "selected" : ""}">${c.label}</button>`,
    )
    .join("");
}

function drawPlayerStats(): void {
  if (!player) return;
  const s = player.stats();
  const box = $("#player-stats");
  box.dataset.currentTime = s.currentTime.toFixed(2);
  box.dataset.decodedFrames = String(s.decodedFrames);
  box.dataset.bufferedAhead = s.bufferedAhead.toFixed(2);
  box.dataset.stalls = String(s.stalls);
  box.dataset.longestStall = s.longestStallSeconds.toFixed(2);
  box.textContent = `t ${s.currentTime.toFixed(1)} s · buffer ${s.bufferedAhead.toFixed(1)} s · ${s.decodedFrames} frames decoded (${s.droppedFrames} dropped) · stalls ${s.stalls}, longest ${s.longestStallSeconds.toFixed(1)} s`;
}

function redraw(): void {
  const sample = state.samples.at(-1);
  drawHeader(sample, state.finished, state.mode);
  drawVerdicts(state.finished);
  drawTimeline(state.events);
  if (!sample) return;
  drawContributors(sample);
  drawAppliances(state.samples, state.mode === "live");
  drawStreams(sample);
  drawPicture(sample);
  charts.update(state.samples);
}

async function act(button: HTMLButtonElement): Promise<void> {
  const status = $("#action-status");
  const action = button.dataset.action!;
  const appliance = button.dataset.appliance ? Number(button.dataset.appliance) : undefined;
  status.className = "action-status";
  status.textContent = `${action}…`;
  try {
    const response = await fetch(`/api/actions/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(appliance === undefined ? {} : { appliance }),
    });
    const answer = (await response.json()) as ActionAnswer;
    status.className = `action-status ${answer.ok ? "ok" : "refused"}`;
    status.textContent = answer.message;
  } catch (error) {
    status.className = "action-status refused";
    status.textContent = `the lab did not answer: ${(error as Error).message}`;
  }
}

document.addEventListener("click", (event) => {
  const target = event.target as HTMLElement;
  const button = target.closest("button");
  if (!button || button.disabled) return;
  if (button.dataset.pick) {
    picked = button.dataset.pick;
    const sample = state.samples.at(-1);
    if (sample) drawPicture(sample);
  } else if (button.dataset.action) void act(button);
});

function load(snapshot: Snapshot): void {
  state.samples = snapshot.samples;
  state.events = snapshot.events;
  state.finished = snapshot.finished;
  state.mode = snapshot.mode;
  document.body.classList.toggle("report", snapshot.mode === "report");
  if (snapshot.mode === "live" && !player) {
    player = new Player($("#video"), $("#video-overlay"), snapshot.player.liveSyncSegments);
    setInterval(drawPlayerStats, 500);
  }
  if (snapshot.mode === "report") $("#picture").hidden = true;
  redraw();
}

if (window.LAB_REPORT) {
  load(window.LAB_REPORT);
} else {
  const feed = new EventSource("/events");
  feed.addEventListener("snapshot", (e) => load(JSON.parse((e as MessageEvent).data)));
  feed.addEventListener("sample", (e) => {
    state.samples.push(JSON.parse((e as MessageEvent).data));
    if (state.samples.length > 900) state.samples.shift();
    redraw();
  });
  feed.addEventListener("event", (e) => {
    state.events.push(JSON.parse((e as MessageEvent).data));
    drawTimeline(state.events);
  });
  feed.addEventListener("finished", (e) => {
    state.finished = JSON.parse((e as MessageEvent).data);
    redraw();
  });
}
