"""Settings of the operator tools, read once from the environment (prefix H200_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class OpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_", extra="ignore", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    request_timeout_s: float = 30.0
