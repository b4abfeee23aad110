"""Test harness for talking to real, independent SIP peers (sipp, baresip, PJSIP).

Everything binds to 127.0.0.1 and picks free ports; every subprocess is started with a
bound lifetime and always killed in cleanup.
"""

from __future__ import annotations

from .net import LOCALHOST, free_port, free_port_range, free_rtp_port_pair, wait_port_open
from .proc import ManagedProcess

__all__ = [
    "LOCALHOST",
    "ManagedProcess",
    "free_port",
    "free_port_range",
    "free_rtp_port_pair",
    "wait_port_open",
]
