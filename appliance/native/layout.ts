/**
 * Where the built addon lives, shared by the build (appliance/native/build.ts, appliance/build.ts) and the
 * loader (appliance/dataplane/io/native-addon.ts):
 *
 *   appliance/native/prebuilds/<platform>-<arch>/stream-intel-io.node   the source tree's builds
 *   dist/appliance/stream-intel-io-<platform>-<arch>.node               beside the bundle (the instances:
 *                                                                        /opt/stream-intel/, linux-arm64)
 */
export const ADDON_FILE = "stream-intel-io.node";

/** `linux-arm64`, `linux-x64`, ...: what the running process can load. */
export const HOST_TARGET = `${process.platform}-${process.arch}`;

/** The addon's name beside the bundle. */
export function bundledName(target: string): string {
  return `stream-intel-io-${target}.node`;
}
