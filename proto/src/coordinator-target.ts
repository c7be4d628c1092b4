/**
 * Where a client (or `tributary admin`) connects: one `host:port`, or
 * several coordinators sharing one store, `ip:port,ip:port,…`. Several
 * addresses become one gRPC target (`ipv4:` / `ipv6:`) that the channel's
 * pick-first balancing walks: a call goes to the first coordinator that
 * answers, and when it dies the channel moves to the next. Several host
 * names are not a target gRPC can walk: give one DNS name with an address
 * record per coordinator instead (gRPC's resolver tries them in turn).
 */
import { isIP } from "node:net";

/** Why `coordinators` cannot be a target, or `undefined`. */
export function coordinatorTargetProblem(coordinators: string): string | undefined {
  const parts = coordinators.split(",").map((p) => p.trim());
  if (parts.some((p) => p === ""))
    return `"${coordinators}" has an empty address; expected host:port[,host:port…]`;
  if (parts.length === 1) return undefined;
  for (const p of parts) {
    const host = hostOf(p);
    if (host === undefined) return `"${p}" is not host:port`;
    if (isIP(host) === 0)
      return `"${p}": several coordinators must be given as IP addresses (or as one DNS name with an address record per coordinator)`;
  }
  const families = new Set(parts.map((p) => isIP(hostOf(p)!)));
  if (families.size > 1) return `"${coordinators}" mixes IPv4 and IPv6 addresses; list one family`;
  return undefined;
}

function hostOf(address: string): string | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  return m?.[1];
}

/**
 * The gRPC target for `coordinators` (see the module comment); throws
 * `TypeError` naming the problem when it cannot be one.
 *
 * @example
 * coordinatorTarget("10.0.0.5:7070,10.0.0.6:7070"); // "ipv4:10.0.0.5:7070,10.0.0.6:7070"
 * coordinatorTarget("coordinator:7070");            // "coordinator:7070"
 */
export function coordinatorTarget(coordinators: string): string {
  const problem = coordinatorTargetProblem(coordinators);
  if (problem !== undefined) throw new TypeError(problem);
  const parts = coordinators.split(",").map((p) => p.trim());
  if (parts.length === 1) return parts[0];
  return `${isIP(hostOf(parts[0])!) === 6 ? "ipv6" : "ipv4"}:${parts.join(",")}`;
}
