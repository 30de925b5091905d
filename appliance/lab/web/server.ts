/**
 * The lab's HTTP server: the dashboard page and its script, the MediaLive stand-in's HLS, the run as
 * server-sent events, and the buttons' actions.
 *
 *   GET  /                      the dashboard
 *   GET  /dashboard.js          its script
 *   GET  /events                text/event-stream: snapshot, then sample / event / finished
 *   GET  /api/state             the snapshot as JSON
 *   GET  /hls/<label>/<n>/...   HLS playlists and segments
 *   POST /api/actions/kill      {"appliance": N}: SIGKILL, then replaced once failed over
 *   POST /api/actions/drain     {"appliance": N}: deregister + SIGTERM, then replaced
 *   POST /api/actions/attack    five seconds of unlisted source, SSRC hijack and flood
 *   POST /api/actions/rotate    hand the whitelist slot over
 *
 * Actions answer 202 {"ok":true,"message"} when started, 409 {"ok":false,"message"} when refused.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Lab, LabEvent } from "../lab.ts";
import { PLAYER } from "../pipeline/medialive.ts";
import type { OperatorActions } from "./actions.ts";
import { clientBundle, livePage } from "./page.ts";
import type { ActionAnswer, RunSummary, Snapshot } from "./protocol.ts";
import { type Telemetry, timelineEvent } from "./telemetry.ts";

const TYPES: Record<string, string> = {
  ".m3u8": "application/vnd.apple.mpegurl",
  ".ts": "video/mp2t",
};

export interface DashboardOptions {
  host: string;
  port: number;
  lab: Lab;
  telemetry: Telemetry;
  actions: OperatorActions;
  /** Where the HLS renditions are written; null without the pipeline. */
  hlsDir: string | null;
}

export class DashboardServer {
  private readonly options: DashboardOptions;
  private readonly server: http.Server;
  private readonly clients = new Set<http.ServerResponse>();
  private readonly startedAt = new Date();
  private finished: RunSummary | null = null;
  private readonly onSample = (sample: unknown) => this.broadcast("sample", sample);
  private readonly eventListener = (event: LabEvent) => this.broadcast("event", timelineEvent(event));

  constructor(options: DashboardOptions) {
    this.options = options;
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: Error) => {
        if (!res.headersSent) this.json(res, 500, { ok: false, message: error.message });
        else res.end();
      });
    });
  }

  /** Listens; resolves with the dashboard's URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.options.telemetry.listeners.add(this.onSample);
    this.options.lab.eventListeners.add(this.eventListener);
    void clientBundle(); // built now, not on the first page load
    return this.url();
  }

  url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address}:${port}/`;
  }

  /** The run is over: every page shows the verdicts (the server keeps serving until stopped). */
  finish(summary: RunSummary): void {
    this.finished = summary;
    this.broadcast("finished", summary);
  }

  async stop(): Promise<void> {
    this.options.telemetry.listeners.delete(this.onSample);
    this.options.lab.eventListeners.delete(this.eventListener);
    for (const client of this.clients) client.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  snapshot(): Snapshot {
    return {
      startedAt: this.startedAt.toISOString(),
      mode: "live",
      samples: this.options.telemetry.samples,
      events: this.options.lab.events.map(timelineEvent),
      player: PLAYER,
      finished: this.finished,
    };
  }

  private broadcast(name: string, data: unknown): void {
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of this.clients) client.write(frame);
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://lab");
    if (req.method === "GET" && url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      return void res.end(livePage());
    }
    if (req.method === "GET" && url.pathname === "/dashboard.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
      return void res.end(await clientBundle());
    }
    if (req.method === "GET" && url.pathname === "/events") return this.events(res);
    if (req.method === "GET" && url.pathname === "/api/state") return this.json(res, 200, this.snapshot());
    if (req.method === "GET" && url.pathname.startsWith("/hls/")) return this.hls(url.pathname, res);
    const action = /^\/api\/actions\/(kill|drain|attack|rotate)$/.exec(url.pathname);
    if (action && req.method === "POST") return this.act(action[1], req, res);
    this.json(res, url.pathname.startsWith("/api/actions/") ? 405 : 404, {
      ok: false,
      message: `no ${req.method} ${url.pathname} here`,
    });
  }

  private events(res: http.ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    res.write(`retry: 1000\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.clients.add(res);
    res.on("close", () => this.clients.delete(res));
  }

  private hls(pathname: string, res: http.ServerResponse): void {
    const root = this.options.hlsDir;
    const relative = decodeURIComponent(pathname.slice("/hls/".length));
    const file = root ? path.resolve(root, relative) : "";
    const type = TYPES[path.extname(file)];
    if (
      !root ||
      !file.startsWith(root + path.sep) ||
      !type ||
      !existsSync(file) ||
      !statSync(file).isFile()
    ) {
      this.json(res, 404, { ok: false, message: `no rendition at ${pathname}` });
      return;
    }
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    createReadStream(file).pipe(res);
  }

  private async act(name: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: { appliance?: unknown } = {};
    const text = await new Promise<string>((resolve) => {
      let data = "";
      req.setEncoding("utf8");
      req.on("data", (chunk) => {
        data += chunk;
      });
      req.on("end", () => resolve(data));
    });
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      return this.json(res, 400, { ok: false, message: "the body is not JSON" });
    }
    const needsAppliance = name === "kill" || name === "drain";
    if (needsAppliance && typeof body.appliance !== "number")
      return this.json(res, 400, { ok: false, message: `${name} needs {"appliance": N}` });
    const actions = this.options.actions;
    const answer: ActionAnswer =
      name === "kill"
        ? actions.kill(body.appliance as number)
        : name === "drain"
          ? actions.drain(body.appliance as number)
          : name === "attack"
            ? await actions.attack()
            : actions.rotate();
    this.json(res, answer.ok ? 202 : 409, answer);
  }
}
