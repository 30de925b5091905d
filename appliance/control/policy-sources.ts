/**
 * Where the policy text comes from: a local file (watched, and re-read on SIGHUP) or an SSM parameter
 * (polled, with exponential backoff while SSM errors). A source only delivers text; validation and the
 * "last good policy stays" rule belong to the PolicyStore.
 */
import { createHash } from "node:crypto";
import { type FSWatcher, promises as fs, watch } from "node:fs";
import path from "node:path";
import { GetParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";

export interface PolicySourceHandlers {
  onText(text: string, origin: string): void;
  onError(error: Error, origin: string): void;
}

export interface PolicySource {
  readonly description: string;
  start(handlers: PolicySourceHandlers): void;
  /** Re-read now (SIGHUP), even if nothing seems to have changed. */
  reload(): void;
  stop(): void;
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

export class FilePolicySource implements PolicySource {
  readonly description: string;
  private readonly file: string;
  private watcher: FSWatcher | null = null;
  private handlers: PolicySourceHandlers | null = null;
  private lastDigest = "";
  private debounce: NodeJS.Timeout | null = null;

  constructor(file: string) {
    this.file = path.resolve(file);
    this.description = `file ${this.file}`;
  }

  start(handlers: PolicySourceHandlers): void {
    this.handlers = handlers;
    void this.read(true);
    // Watch the directory: editors and `mv` replace the file, which a file watch would lose.
    try {
      this.watcher = watch(path.dirname(this.file), (_event, name) => {
        if (name && name !== path.basename(this.file)) return;
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.read(false), 100);
      });
      this.watcher.on("error", (error) => handlers.onError(error, this.description));
    } catch (error) {
      handlers.onError(error as Error, `${this.description} (watch; SIGHUP still reloads)`);
    }
  }

  reload(): void {
    void this.read(true);
  }

  stop(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = null;
  }

  private async read(force: boolean): Promise<void> {
    const handlers = this.handlers;
    if (!handlers) return;
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (error) {
      handlers.onError(error as Error, this.description);
      return;
    }
    const hash = digest(text);
    if (!force && hash === this.lastDigest) return;
    this.lastDigest = hash;
    handlers.onText(text, this.description);
  }
}

export interface SsmSourceOptions {
  client: SSMClient;
  name: string;
  pollSeconds: number;
  /** Longest wait between attempts while SSM keeps failing. */
  maxBackoffSeconds?: number;
}

export class SsmPolicySource implements PolicySource {
  readonly description: string;
  private readonly options: SsmSourceOptions;
  private handlers: PolicySourceHandlers | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastVersion: number | undefined;
  private failures = 0;
  private stopped = false;
  private inFlight = false;

  constructor(options: SsmSourceOptions) {
    this.options = options;
    this.description = `SSM parameter ${options.name}`;
  }

  start(handlers: PolicySourceHandlers): void {
    this.handlers = handlers;
    void this.poll(false);
  }

  reload(): void {
    if (this.timer) clearTimeout(this.timer);
    void this.poll(true);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Delay before the next poll: the interval when healthy, doubling from 1 s up to a cap while failing. */
  nextDelayMs(): number {
    if (this.failures === 0) return this.options.pollSeconds * 1000;
    const cap = (this.options.maxBackoffSeconds ?? Math.max(60, this.options.pollSeconds)) * 1000;
    const base = Math.min(cap, 1000 * 2 ** (this.failures - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  private async poll(force: boolean): Promise<void> {
    const handlers = this.handlers;
    if (!handlers || this.stopped || this.inFlight) return;
    this.inFlight = true;
    try {
      const result = await this.options.client.send(
        new GetParameterCommand({ Name: this.options.name, WithDecryption: true }),
      );
      const text = result.Parameter?.Value;
      if (text === undefined) throw new Error(`${this.options.name} has no value`);
      this.failures = 0;
      const version = result.Parameter?.Version;
      if (force || version === undefined || version !== this.lastVersion) {
        this.lastVersion = version;
        handlers.onText(text, `${this.description} (version ${version ?? "?"})`);
      }
    } catch (error) {
      this.failures++;
      handlers.onError(error as Error, this.description);
    } finally {
      this.inFlight = false;
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(false), this.nextDelayMs());
  }
}
