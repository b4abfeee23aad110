"""Where browser legs listen and what address they announce (``GATEWAY_WEBRTC_HOST``).

aioice gathers a host candidate on every interface address but loopback. The gateway narrows
that to one address, process-wide (:func:`use_host`):

* an address of this machine (loopback included): candidates are gathered on it alone, so a
  gateway on 127.0.0.1 serves browsers on the same host and nothing else listens;
* an address that is not this machine's (the public side of a 1:1 NAT): candidates are
  gathered on the wildcard address and the answer announces that address instead
  (:func:`rewrite_candidates`);
* none (a wildcard-bound gateway with no WebRTC host set): aioice's own choice, every
  interface, plus loopback.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import aioice.ice

__all__ = ["is_local_address", "rewrite_candidates", "use_host"]

_original = aioice.ice.get_host_addresses


def is_local_address(host: str) -> bool:
    """Whether ``host`` is an address of this machine (one a socket can be bound to)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def use_host(host: str | None) -> str | None:
    """Make browser legs of this process listen on ``host`` (see the module text). Returns
    the address to announce in answers instead of the bound one, or None."""
    if host is None or ipaddress.ip_address(host).is_unspecified:

        def every(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            found = _original(use_ipv4, use_ipv6)
            return found + (["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else [])

        aioice.ice.get_host_addresses = every
        return None
    if is_local_address(host):
        v6 = ":" in host
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: (
            [host] if (use_ipv6 if v6 else use_ipv4) else []
        )
        return None
    wildcard = "::" if ":" in host else "0.0.0.0"
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [wildcard]
    return host


_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE | re.IGNORECASE
)


def rewrite_candidates(sdp: str, announce: str | None) -> str:
    """Our host candidates' address replaced by ``announce`` (and ``c=`` with it)."""
    if announce is None:
        return sdp
    sdp = _CANDIDATE.sub(lambda m: m.group(1) + announce + m.group(3), sdp)
    family = "IP6" if ":" in announce else "IP4"
    return re.sub(r"^c=IN IP[46] \S+", f"c=IN {family} {announce}", sdp, flags=re.MULTILINE)
