"""DTMF: pure digit logic (RFC 4733 events, SIP INFO bodies, in-band detection, digit
collection, PIN policy). No asyncio, no sockets, no clock of its own."""

from dtmf.collector import DigitCollector, DigitMerger, Entry
from dtmf.events import DIGITS, Digit, Method
from dtmf.inband import InbandDetector
from dtmf.info import is_dtmf_info, parse_info
from dtmf.pin import CallTries, PinGuard, pin_matches
from dtmf.rfc4733 import TelephoneEventReceiver

__all__ = [
    "DIGITS",
    "CallTries",
    "Digit",
    "DigitCollector",
    "DigitMerger",
    "Entry",
    "InbandDetector",
    "Method",
    "PinGuard",
    "TelephoneEventReceiver",
    "is_dtmf_info",
    "parse_info",
    "pin_matches",
]
