/** The instance files, in a private bucket named by content, and the appliances' log group. */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { cloudwatch, s3 } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ApplianceArtifact, type InstanceFile } from "../../contracts/function-env.ts";
import { named, type StageConfig } from "../config.ts";

/** An instance file as uploaded: its key in the bucket and the digest user data checks. */
export interface UploadedFile extends InstanceFile {
  key: string;
  sha256: string;
}

/** Reads each instance file and names its object by content, so a new build is a new launch template. */
export function uploadedFiles(
  root: string,
  files: readonly InstanceFile[] = ApplianceArtifact.instanceFiles,
) {
  return files.map((file): UploadedFile => {
    const location = path.join(root, file.source);
    if (!existsSync(location))
      throw new Error(`${file.source} is missing: run \`npm run build:appliance\` before deploying`);
    const sha256 = createHash("sha256").update(readFileSync(location)).digest("hex");
    return { ...file, sha256, key: `appliance/${sha256.slice(0, 16)}/${path.basename(file.source)}` };
  });
}

export interface ApplianceAssets {
  assets: s3.BucketV2;
  files: UploadedFile[];
  uploads: s3.BucketObjectv2[];
  logGroup: cloudwatch.LogGroup;
}

export function createAssets(config: StageConfig, root: string): ApplianceAssets {
  const assets = new s3.BucketV2(named(config, "appliance-assets"), {
    forceDestroy: config.stage !== "production",
  });
  new s3.BucketPublicAccessBlock(named(config, "appliance-assets-private"), {
    bucket: assets.id,
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
  });
  const files = uploadedFiles(root);
  const uploads = files.map(
    (file) =>
      new s3.BucketObjectv2(named(config, `asset-${path.basename(file.source)}`), {
        bucket: assets.id,
        key: file.key,
        source: new pulumi.asset.FileAsset(path.join(root, file.source)),
      }),
  );

  // Created here with a retention, so the agent never creates it without one.
  const logGroup = new cloudwatch.LogGroup(named(config, "appliance-logs"), {
    name: `/stream-intel/${config.stage}/appliance`,
    retentionInDays: 30,
  });

  return { assets, files, uploads, logGroup };
}
