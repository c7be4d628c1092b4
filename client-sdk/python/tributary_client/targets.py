"""Where a client connects: one ``host:port``, or several coordinators sharing one
store as ``ip:port,ip:port``, which becomes one gRPC target (``ipv4:`` / ``ipv6:``)
that the channel's pick-first balancing walks: calls go to the first coordinator
that answers, and to the next when it dies. Several host names are not a target
gRPC can walk: give one DNS name with an address record per coordinator instead.
The same rule as ``coordinatorTarget`` of ``@tributary/protocol``."""

import ipaddress
import re
from typing import Optional

_HOST_PORT = (re.compile(r"^\[([^\]]+)\]:(\d+)$"), re.compile(r"^([^:]+):(\d+)$"))


def _host(address: str) -> Optional[str]:
    for pattern in _HOST_PORT:
        m = pattern.match(address)
        if m:
            return m.group(1)
    return None


def _family(host: str) -> int:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return 0


def coordinator_target_problem(coordinators: str) -> Optional[str]:
    """Why ``coordinators`` cannot be a target, or ``None``."""
    parts = [p.strip() for p in coordinators.split(",")]
    if any(p == "" for p in parts):
        return f'"{coordinators}" has an empty address; expected host:port[,host:port…]'
    if len(parts) == 1:
        return None
    for p in parts:
        host = _host(p)
        if host is None:
            return f'"{p}" is not host:port'
        if _family(host) == 0:
            return (
                f'"{p}": several coordinators must be given as IP addresses '
                "(or as one DNS name with an address record per coordinator)"
            )
    if len({_family(_host(p)) for p in parts}) > 1:
        return f'"{coordinators}" mixes IPv4 and IPv6 addresses; list one family'
    return None


def coordinator_target(coordinators: str) -> str:
    """The gRPC target for ``coordinators``; ``ValueError`` naming the problem otherwise."""
    problem = coordinator_target_problem(coordinators)
    if problem is not None:
        raise ValueError(problem)
    parts = [p.strip() for p in coordinators.split(",")]
    if len(parts) == 1:
        return parts[0]
    scheme = "ipv6" if _family(_host(parts[0])) == 6 else "ipv4"
    return f"{scheme}:{','.join(parts)}"
