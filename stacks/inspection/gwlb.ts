/**
 * The Gateway Load Balancer in both AZs (cross-zone on), its listener, the GENEVE target group the
 * appliances answer, and the endpoint service the steering endpoints attach to.
 */
import { ec2, lb } from "@pulumi/aws";
import { GENEVE_PORT, HEALTH_PORT } from "../../contracts/gwlb.ts";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

export interface GatewayLoadBalancer {
  gwlb: lb.LoadBalancer;
  targetGroup: lb.TargetGroup;
  endpointService: ec2.VpcEndpointService;
}

export function createGatewayLoadBalancer(config: StageConfig, network: Network): GatewayLoadBalancer {
  // A gateway load balancer takes no scheme: the provider sends Scheme=internal whenever `internal` is
  // set, and ELB refuses a scheme for type gateway.
  const gwlb = new lb.LoadBalancer(named(config, "gwlb"), {
    loadBalancerType: "gateway",
    subnets: network.gwlbSubnets.map((s) => s.id),
    enableCrossZoneLoadBalancing: true,
    enableDeletionProtection: config.stage === "production",
  });
  const targetGroup = new lb.TargetGroup(named(config, "geneve"), {
    name: named(config, "geneve").slice(0, 32),
    protocol: "GENEVE",
    port: GENEVE_PORT,
    vpcId: network.inspectionVpc.id,
    targetType: "instance",
    deregistrationDelay: config.deregistrationDelaySeconds,
    healthCheck: {
      enabled: true,
      protocol: "HTTP",
      port: String(HEALTH_PORT),
      path: "/healthz",
      matcher: "200",
      interval: 10,
      timeout: 5,
      healthyThreshold: 3,
      unhealthyThreshold: 3,
    },
    targetFailovers: [{ onDeregistration: "rebalance", onUnhealthy: "rebalance" }],
  });
  new lb.Listener(named(config, "gwlb-listener"), {
    loadBalancerArn: gwlb.arn,
    defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
  });
  const endpointService = new ec2.VpcEndpointService(named(config, "gwlb-service"), {
    acceptanceRequired: false,
    gatewayLoadBalancerArns: [gwlb.arn],
  });

  return { gwlb, targetGroup, endpointService };
}
