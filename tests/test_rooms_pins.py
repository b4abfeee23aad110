"""PINs (4-10 ASCII digits, host PIN distinct) and the role a PIN gives."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rooms.errors import InvalidRoom
from rooms.pins import check_pins, is_valid_pin
from rooms.roles import Role, role_for_pin


@pytest.mark.parametrize("pin", ["0000", "1234", "9876543210", "0123456"])
def test_valid_pins(pin: str) -> None:
    assert is_valid_pin(pin)
    check_pins(pin, None)
    check_pins(None, pin)


@pytest.mark.parametrize(
    "pin", ["", "123", "12345678901", "12a4", "12 34", "١٢٣٤", "1234\n", "+1234", 1234, None]
)
def test_invalid_pins(pin: object) -> None:
    assert not is_valid_pin(pin)


def test_check_pins_names_the_field() -> None:
    with pytest.raises(InvalidRoom, match="host_pin") as caught:
        check_pins("1234", "12")
    assert caught.value.code == "invalid_pin"
    with pytest.raises(InvalidRoom, match="^pin") as caught:
        check_pins("abcd", None)
    assert caught.value.code == "invalid_pin"


def test_host_pin_must_differ_from_pin() -> None:
    with pytest.raises(InvalidRoom) as caught:
        check_pins("1234", "1234")
    assert caught.value.code == "host_pin_equals_pin"
    check_pins("1234", "12345")
    check_pins(None, None)


@dataclass
class Pins:
    pin: str | None
    host_pin: str | None


def test_roles() -> None:
    assert [r.value for r in Role] == ["organiser", "guest", "spectator"]
    room = Pins("1111", "2222")
    assert role_for_pin(room, "2222") is Role.ORGANISER
    assert role_for_pin(room, "1111") is Role.GUEST
    assert role_for_pin(room, "3333") is None
    assert role_for_pin(room, None) is None
    open_room = Pins(None, "2222")
    assert role_for_pin(open_room, None) is Role.GUEST
    assert role_for_pin(open_room, "2222") is Role.ORGANISER
    assert role_for_pin(Pins(None, None), "") is Role.GUEST
