"""Django's SECRET_KEY when DJANGO_SECRET_KEY is not set: random, made once, kept in var/secret_key.

The key signs sessions and, unless AGENTFIELD_SECRET_KEYS is set, encrypts stored webhook secrets
(webhooks/crypto.py), so it must never be a constant that ships with the code. A new
checkout gets its own key on first run, beside the embedded database, readable by its owner only.
A generated key is for one machine: `serve` refuses a public address with it and `manage.py check
--deploy` fails on it (nodes/checks.py), because several servers need one shared key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# The constant this project used as its default key until it generated one; anyone can read it in
# the history, so it is treated like no key at all, and secrets sealed with it are re-sealed
# (webhooks/migrations/0003, `manage.py reseal_secrets`).
LEGACY_DEFAULT = "dev-insecure-change-me-" + "x" * 32


def load_or_create(path: Path) -> str:
    """The key stored at `path`, created (0600) if missing; safe when processes start together."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(draft, path)  # atomic, and fails if another process got there first: its key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read(path)


def _read(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"{path} is empty: delete it to have a new key generated, or set DJANGO_SECRET_KEY")
    return key


def is_weak(key: str, generated: bool) -> bool:
    """True for a key that must not serve a public address: generated for this machine, or public."""
    return generated or not key or key == LEGACY_DEFAULT
