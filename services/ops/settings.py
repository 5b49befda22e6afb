"""Settings of the operator tools, read once from the environment (prefix H200_)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import redis_url_with_password


class OpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_", extra="ignore", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    request_timeout_s: float = 30.0
    redis_secrets_dir: Path = Path(".run/secrets/redis")

    @model_validator(mode="after")
    def _redis_login(self) -> Self:
        object.__setattr__(self, "redis_url", redis_url_with_password(self.redis_url, self.redis_secrets_dir))
        return self
