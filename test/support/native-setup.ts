/**
 * vitest global setup: builds the native I/O addon for this host before any test starts a daemon, so the
 * process tests run on the backend the instances use (a plain compiler call; see appliance/native/build.ts).
 */
import { buildNative, type NativeTarget } from "../../appliance/native/build.ts";
import { HOST_TARGET } from "../../appliance/native/layout.ts";

export default function setup(): void {
  buildNative(HOST_TARGET as NativeTarget);
}
