/** Thrown by the allocating decoders (tests, lab, tools). The per-packet parsers return codes instead. */
export class WireError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}
