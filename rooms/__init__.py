"""Rooms: numbers, PINs, schedules, roles and link tokens, stored with sqlmodel + Alembic.

The gateway and the API use :class:`rooms.store.RoomStore` (built on an engine from
:func:`rooms.db.create_engine_for` after :func:`rooms.db.upgrade`) and
:func:`rooms.schedule.is_active`.
"""
