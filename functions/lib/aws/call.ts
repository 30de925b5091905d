/**
 * Every AWS call a function makes goes through `call`: a failure is re-thrown with what was asked of
 * which resource, the SDK's error kept as the cause.
 */
import { errorName } from "../events.ts";

/**
 * An AWS call that failed. It keeps the SDK's exception name (ConflictException, ThrottlingException,
 * ...): the functions decide on it, and Lambda reports it as the error type, as before the wrap.
 */
export class AwsCallError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what} failed: ${(cause as Error | null)?.message ?? String(cause)}`, { cause });
    this.name = errorName(cause) || "AwsCallError";
  }
}

export async function call<T>(what: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw new AwsCallError(what, error);
  }
}
