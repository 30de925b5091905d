/**
 * The whole system minus what only the SST CLI can build (the Lambda functions): network, parameters,
 * inspection tier, steering, media and monitoring, and the references the automation needs. Plain
 * Pulumi resources, so the tests run it under Pulumi's mocks.
 */

import { getCallerIdentityOutput } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type AutomationRefs, functionName } from "./automation.ts";
import type { StageConfig } from "./config.ts";
import { createDelivery, type Delivery } from "./delivery.ts";
import { createInspection, type Inspection } from "./inspection.ts";
import { createMedia, type Media } from "./media.ts";
import { createMonitoring, type Monitoring } from "./monitoring.ts";
import { createNetwork, type Network } from "./network.ts";
import { createParameters, type Parameters } from "./parameters.ts";
import { createSteering, type Steering } from "./steering.ts";

export interface Infrastructure {
  network: Network;
  parameters: Parameters;
  inspection: Inspection;
  steering: Steering;
  media: Media;
  monitoring: Monitoring;
  delivery: Delivery;
  automationRefs: AutomationRefs;
}

/** `root` is the repository root: the appliance bundle and the default policy are read from it. */
export function buildInfrastructure(config: StageConfig, root: string): Infrastructure {
  const network = createNetwork(config);
  const parameters = createParameters(config, `${root}/appliance/policy.default.json`);
  const inspection = createInspection(config, network, parameters, root);
  const steering = createSteering(config, network, inspection);
  const media = createMedia(config, network);
  const delivery = createDelivery(config);
  const account = getCallerIdentityOutput().accountId;
  const automationRefs: AutomationRefs = {
    targetGroupArn: inspection.targetGroup.arn,
    targetGroupDimension: inspection.targetGroup.arnSuffix,
    loadBalancerDimension: inspection.gwlb.arnSuffix,
    autoScalingGroupName: inspection.group.name,
    autoScalingGroupArn: inspection.group.arn,
    flowArn: media.flow.flowArn,
    flowSourceArns: [
      media.flow.source.apply((source) => {
        if (!source.sourceArn)
          throw new Error("the flow's source has no ARN: UpdateFlowSource cannot be granted");
        return source.sourceArn;
      }),
    ],
    channelId: media.channel.channelId,
    channelArn: media.channel.arn,
    policyParameter: { name: parameters.policy.name, arn: parameters.policy.arn },
    contributorsParameter: { name: parameters.contributors.name, arn: parameters.contributors.arn },
    stateParameter: { name: parameters.streamState.name, arn: parameters.streamState.arn },
    eventBusArn: pulumi.interpolate`arn:aws:events:${config.region}:${account}:event-bus/default`,
    idempotencyTable: { name: delivery.idempotency.name, arn: delivery.idempotency.arn },
    deadLetterQueueArn: delivery.deadLetters.arn,
    accountId: account,
  };
  const monitoring = createMonitoring(config, {
    targetGroupDimension: automationRefs.targetGroupDimension,
    loadBalancerDimension: automationRefs.loadBalancerDimension,
    flowArn: automationRefs.flowArn,
    channelId: automationRefs.channelId,
    deadLetterQueueName: delivery.deadLetters.name,
    functionNames: {
      applianceHealer: functionName(config, "applianceHealer"),
      whitelistRotator: functionName(config, "whitelistRotator"),
      streamManager: functionName(config, "streamManager"),
    },
  });
  return { network, parameters, inspection, steering, media, monitoring, delivery, automationRefs };
}
