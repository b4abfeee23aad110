"""Room PINs: 4 to 10 ASCII digits, or none."""

from __future__ import annotations

import re

from rooms.errors import InvalidRoom

__all__ = ["PIN_PATTERN", "check_pins", "is_valid_pin"]

#: The pattern as published in the OpenAPI document (ASCII digits only).
PIN_PATTERN = r"^[0-9]{4,10}$"
_PIN = re.compile(r"[0-9]{4,10}")


def is_valid_pin(value: object) -> bool:
    return isinstance(value, str) and _PIN.fullmatch(value) is not None


def check_pins(pin: str | None, host_pin: str | None) -> None:
    """Raise :class:`InvalidRoom` unless both PINs are valid and different."""
    for field, value in (("pin", pin), ("host_pin", host_pin)):
        if value is not None and not is_valid_pin(value):
            raise InvalidRoom("invalid_pin", f"{field} must be 4 to 10 digits or null")
    if pin is not None and host_pin is not None and pin == host_pin:
        raise InvalidRoom("host_pin_equals_pin", "host_pin must differ from pin")
