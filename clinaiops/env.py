"""Typed readers for configuration from the environment.

Configuration comes only from the environment (DESIGN §7). Each helper fails loudly with the variable's
name when a value cannot be parsed, instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ


class ConfigurationError(RuntimeError):
    """A required or malformed environment variable."""


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ConfigurationError(f"environment variable {name} is required")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"environment variable {name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={value!r} is not an integer") from exc


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(name: str, default: str) -> dict[str, Any]:
    """Parse a database URL (postgres://…, sqlite:///path) into Django's DATABASES entry."""
    url = env_str(name, default)
    try:
        config: dict[str, Any] = dict(environ.Env.db_url_config(url))
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ConfigurationError(f"environment variable {name} is not a valid database URL") from exc
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE transactions take SQLite's write lock at BEGIN, so two writers can never read the same
        # audit-chain head and fork it (DESIGN §4); the timeout lets a queued writer wait instead of failing.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 30)
    return config
