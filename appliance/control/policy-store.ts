/**
 * Holds the last good policy. New text is validated with the shared schema; a bad document is logged
 * with every problem, counted, and ignored, so the appliance keeps enforcing what it had.
 */
import { type Policy, PolicyError, parsePolicy } from "../../contracts/policy.ts";
import type { Logger } from "./logger.ts";

export interface PolicyStoreEvents {
  onApplied(policy: Policy, generation: number): void;
}

export class PolicyStore {
  current: Policy | null = null;
  generation = 0;
  reloads = 0;
  failures = 0;
  lastError: string | null = null;
  private lastText: string | null = null;
  private readonly logger: Logger;
  private readonly events: PolicyStoreEvents;

  constructor(logger: Logger, events: PolicyStoreEvents) {
    this.logger = logger;
    this.events = events;
  }

  /** Returns true when the text became the current policy. */
  offer(text: string, origin: string): boolean {
    let policy: Policy;
    try {
      policy = parsePolicy(text, origin);
    } catch (error) {
      this.failures++;
      const issues = error instanceof PolicyError ? error.issues : [];
      this.lastError = (error as Error).message;
      this.logger.error(
        { event: "policy_rejected", origin, issues, keeping: this.generation > 0 ? this.generation : null },
        `policy rejected, ${this.generation > 0 ? `keeping generation ${this.generation}` : "no policy loaded yet"}: ${this.lastError}`,
      );
      return false;
    }
    if (text === this.lastText) return false;
    this.lastText = text;
    this.current = policy;
    this.generation++;
    this.reloads++;
    this.lastError = null;
    this.logger.info(
      {
        event: "policy_loaded",
        origin,
        generation: this.generation,
        flows: policy.flows.map((f) => f.name),
        rules: policy.rules.length,
      },
      `policy generation ${this.generation} loaded from ${origin}`,
    );
    this.events.onApplied(policy, this.generation);
    return true;
  }

  /** A source could not be read at all (missing file, SSM error): counted like a rejected policy. */
  sourceFailed(error: Error, origin: string): void {
    this.failures++;
    this.lastError = `${origin}: ${error.message}`;
    this.logger.error(
      { event: "policy_source_error", origin, error: error.message },
      `cannot read policy from ${origin}: ${error.message}; ${this.generation > 0 ? `keeping generation ${this.generation}` : "no policy loaded yet"}`,
    );
  }
}
