/** The MediaPackage channel MediaLive pushes to and its HLS origin endpoint. */
import { mediapackage } from "@pulumi/aws";
import * as native from "@pulumi/aws-native";
import { named, type StageConfig } from "../config.ts";

export function createPackaging(config: StageConfig) {
  const packageChannel = new mediapackage.Channel(named(config, "package"), {
    channelId: named(config, "package"),
    description: "HLS origin",
  });
  const hlsEndpoint = new native.mediapackage.OriginEndpoint(named(config, "hls"), {
    awsId: named(config, "hls"),
    channelId: packageChannel.channelId,
    startoverWindowSeconds: 0,
    hlsPackage: { segmentDurationSeconds: 6, playlistWindowSeconds: 60 },
    // The origin answers only the viewers' ranges (a CDN's, the operators'), never the whole internet.
    whitelist: [...config.hlsViewerCidrs],
  });
  return { packageChannel, hlsEndpoint };
}
