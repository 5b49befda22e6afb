"""The test session's passwords (tests/conftest.py generates them) and the logins made of them."""

from __future__ import annotations

import os
from pathlib import Path


def secret_of(name: str, variable: str = "H200_KAFKA_SECRETS_DIR") -> str:
    """The session's password of principal `name` (in H200_KAFKA_SECRETS_DIR, or the directory `variable` names)."""
    return Path(os.environ[variable], name).read_text(encoding="utf-8").strip()


def redis_login_url(port: int, user: str) -> str:
    return f"redis://{user}:{secret_of(user, 'H200_REDIS_SECRETS_DIR')}@127.0.0.1:{port}/0"
