/** The health port: `/healthz` for the GWLB target group's health check, `/metrics` for Prometheus. */
import http from "node:http";
import type { Registry } from "prom-client";

export interface HealthState {
  healthy: boolean;
  /** starting | serving | draining | stalled | no-policy */
  status: string;
  detail?: string;
}

export function startHttpServer(options: {
  host: string;
  port: number;
  health: () => HealthState;
  registry: Registry;
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz" || url.startsWith("/healthz?")) {
      const state = options.health();
      res
        .writeHead(state.healthy ? 200 : 503, {
          "content-type": "application/json",
          "cache-control": "no-store",
        })
        .end(JSON.stringify(state));
      return;
    }
    if (url === "/metrics" || url.startsWith("/metrics?")) {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": options.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(error.message),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz or /metrics\n");
  });
  // Health checks must not queue behind slow clients.
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
