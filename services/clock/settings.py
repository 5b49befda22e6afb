"""The clock process's settings (prefix H200_CLOCK_); where the broker is comes from ClusterSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClockSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_CLOCK_", extra="ignore", frozen=True)

    interval_s: float = Field(1.0, gt=0, description="wall seconds between ticks")
    clock_id: str = "h200"
    send_timeout_s: float = Field(10.0, gt=0, description="a tick not acknowledged by then counts as failed")
    retry_s: float = Field(0.5, gt=0, description="first wait after a failure, doubling up to retry_max_s")
    retry_max_s: float = Field(10.0, gt=0)
