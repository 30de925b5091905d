/**
 * Forces every packet between the MediaConnect interface subnets and the MediaLive input subnets
 * through a GWLB endpoint, in both directions. One endpoint per AZ; for each (MediaConnect subnet,
 * MediaLive subnet) pair the endpoint is chosen by one fixed rule, the MediaLive input subnet's AZ,
 * in both route tables, so both halves of a flow cross the same endpoint and the same appliance. The
 * routes name whole subnet CIDRs (more specific than the VPC's local route, as AWS requires). The
 * endpoint subnets keep only the local route.
 */
import { ec2 } from "@pulumi/aws";
import { named, type StageConfig } from "./config.ts";
import type { Inspection } from "./inspection.ts";
import type { Network } from "./network.ts";

export interface Steering {
  endpoints: ec2.VpcEndpoint[];
  routes: ec2.Route[];
}

export function createSteering(config: StageConfig, network: Network, inspection: Inspection): Steering {
  const endpoints = network.endpointSubnets.map(
    (subnet, i) =>
      new ec2.VpcEndpoint(named(config, `gwlb-endpoint-${"ab"[i]}`), {
        vpcId: network.streamVpc.id,
        serviceName: inspection.endpointService.serviceName,
        vpcEndpointType: "GatewayLoadBalancer",
        subnetIds: [subnet.id],
      }),
  );
  const routes: ec2.Route[] = [];
  for (let mc = 0; mc < 2; mc++) {
    for (let ml = 0; ml < 2; ml++) {
      const endpoint = endpoints[ml]; // the MediaLive input subnet's AZ decides, in both directions
      routes.push(
        new ec2.Route(named(config, `mc-${"ab"[mc]}-to-ml-${"ab"[ml]}`), {
          routeTableId: network.mediaConnectRouteTables[mc].id,
          destinationCidrBlock: config.mediaLiveSubnets[ml],
          vpcEndpointId: endpoint.id,
        }),
        new ec2.Route(named(config, `ml-${"ab"[ml]}-to-mc-${"ab"[mc]}`), {
          routeTableId: network.mediaLiveRouteTables[ml].id,
          destinationCidrBlock: config.mediaConnectSubnets[mc],
          vpcEndpointId: endpoint.id,
        }),
      );
    }
  }
  return { endpoints, routes };
}
