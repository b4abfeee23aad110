"""dtmf package."""
