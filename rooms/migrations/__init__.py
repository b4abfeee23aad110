"""Alembic migrations of the room store (run by rooms.db.upgrade)."""
