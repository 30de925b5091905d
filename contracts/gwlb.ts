/**
 * The ports the Gateway Load Balancer and the appliances agree on (docs/gwlb-wire-contract.md): the
 * stacks open them, the daemon listens on them, the lab's emulator speaks them.
 */

/** GENEVE (RFC 8926 §3.3): GWLB sends to and expects returns on UDP 6081; nothing else is configurable. */
export const GENEVE_PORT = 6081;

/** The appliance's HTTP health endpoint (`/healthz`), the target group's health check port. */
export const HEALTH_PORT = 8080;
