/**
 * What an appliance runs at first boot: install Node and the CloudWatch agent, fetch the instance files
 * and check their digests, write the daemon's environment, start the systemd unit, and complete the
 * launch hook once the daemon answers /healthz.
 */
import { HEALTH_PORT } from "../../contracts/gwlb.ts";
import type { StageConfig } from "../config.ts";
import type { UploadedFile } from "./assets.ts";

/** The launch lifecycle hook an instance completes itself once its daemon answers /healthz with 200. */
export const LAUNCH_HOOK = "appliance-serving";
/** How long a launching instance may take to serve before the ASG abandons (terminates) it. */
export const LAUNCH_HOOK_TIMEOUT_SECONDS = 900;

export interface BootSettings {
  bucket: string;
  policyParameter: string;
  groupName: string;
  logGroupName: string;
  files: readonly UploadedFile[];
}

export function userData(config: StageConfig, boot: BootSettings): string {
  const downloads = boot.files
    .map(
      (f) =>
        `install -d -m 0755 "$(dirname ${f.installTo})"
aws s3 cp --only-show-errors s3://${boot.bucket}/${f.key} ${f.installTo}
echo "${f.sha256}  ${f.installTo}" | sha256sum --check --status
chmod ${f.mode} ${f.installTo}`,
    )
    .join("\n");
  return `#!/bin/bash
# Stream Intelligence appliance bootstrap (Amazon Linux 2023 arm64).
set -euo pipefail
export AWS_REGION=${config.region} AWS_DEFAULT_REGION=${config.region}
dnf install -y nodejs22 amazon-cloudwatch-agent
alternatives --set node /usr/bin/node-22 || true
id stream-intel >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin stream-intel
install -d -m 0755 /opt/stream-intel /etc/stream-intel
${downloads}
TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE_ID=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
cat > /etc/stream-intel/appliance.env <<ENV
SI_POLICY_SSM=${boot.policyParameter}
SI_STAGE=${config.stage}
SI_WORKERS=${config.applianceWorkers}
SI_CPU_AFFINITY=auto
SI_DRAIN_SECONDS=${config.drainSeconds}
SI_INSTANCE_ID=$INSTANCE_ID
AWS_REGION=${config.region}
ENV
cat > /opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json <<'CWA'
{"logs":{"logs_collected":{"files":{"collect_list":[{"file_path":"/var/log/stream-intel/appliance.log","log_group_name":"${boot.logGroupName}","log_stream_name":"{instance_id}"}]}},"metrics_collected":{"emf":{}}}}
CWA
mkdir -p /etc/systemd/system/stream-intel-appliance.service.d /var/log/stream-intel
printf '[Service]\\nStandardOutput=append:/var/log/stream-intel/appliance.log\\nStandardError=append:/var/log/stream-intel/appliance.log\\n' > /etc/systemd/system/stream-intel-appliance.service.d/log.conf
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json
systemctl daemon-reload
systemctl enable --now stream-intel-appliance
# In service only once the daemon serves: until then the ASG counts this instance as launching, so a
# refresh or a replacement never retires a serving appliance for one that is not (ABANDON on timeout).
for _ in $(seq 1 ${Math.floor((LAUNCH_HOOK_TIMEOUT_SECONDS - 60) / 5)}); do
  if curl -sf -o /dev/null http://127.0.0.1:${HEALTH_PORT}/healthz; then
    aws autoscaling complete-lifecycle-action --lifecycle-hook-name ${LAUNCH_HOOK} \\
      --auto-scaling-group-name ${boot.groupName} --instance-id "$INSTANCE_ID" --lifecycle-action-result CONTINUE
    exit 0
  fi
  sleep 5
done
echo "stream-intel-appliance never answered /healthz with 200: leaving the launch to be abandoned" >&2
exit 1
`;
}
