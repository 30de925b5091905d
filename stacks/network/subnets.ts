import { ec2 } from "@pulumi/aws";
import { named, type StageConfig } from "../config.ts";

/** One subnet per AZ for `role`, named `<role>-a` / `<role>-b`, never with public addresses. */
export function subnets(
  config: StageConfig,
  vpc: ec2.Vpc,
  role: string,
  cidrs: readonly [string, string],
): ec2.Subnet[] {
  return cidrs.map(
    (cidrBlock, i) =>
      new ec2.Subnet(named(config, `${role}-${"ab"[i]}`), {
        vpcId: vpc.id,
        cidrBlock,
        availabilityZone: config.zones[i],
        mapPublicIpOnLaunch: false,
        tags: { Name: named(config, `${role}-${"ab"[i]}`), Role: role },
      }),
  );
}

/** One route table per subnet, so each can be steered on its own. */
export function routeTables(
  config: StageConfig,
  vpc: ec2.Vpc,
  role: string,
  list: ec2.Subnet[],
): ec2.RouteTable[] {
  return list.map((subnet, i) => {
    const table = new ec2.RouteTable(named(config, `${role}-rt-${"ab"[i]}`), {
      vpcId: vpc.id,
      tags: { Name: named(config, `${role}-rt-${"ab"[i]}`) },
    });
    new ec2.RouteTableAssociation(named(config, `${role}-rta-${"ab"[i]}`), {
      subnetId: subnet.id,
      routeTableId: table.id,
    });
    return table;
  });
}
