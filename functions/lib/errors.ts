/** The event (or the function's configuration) is not what the function handles: nothing was changed. */
export class InvalidInputError extends Error {
  override readonly name = "InvalidInputError";
}
