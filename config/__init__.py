"""Configuration: the contract's variables validated into one frozen settings object."""

from config.settings import ConfigError, IceServer, Settings, load_settings

__all__ = ["ConfigError", "IceServer", "Settings", "load_settings"]
