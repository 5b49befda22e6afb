"""`python -m services.api`: the HTTP API on 127.0.0.1 (H200_API_HOST, H200_API_PORT), answering the callers whose
tokens are in H200_API_SECRETS_DIR (services.api.callers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Self

import uvicorn
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.api.app import create_app
from services.api.callers import Callers
from services.api.gateway import KafkaRedisGateway
from services.common.outage_log import install_outage_log_filter_on_handlers
from services.common.settings import redis_url_with_password


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_", extra="ignore", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "h200"
    api_host: str = "127.0.0.1"
    api_port: int = 8088
    redis_secrets_dir: Path = Path(".run/secrets/redis")
    api_secrets_dir: Path = Path(".run/secrets/api")

    @model_validator(mode="after")
    def _redis_login(self) -> Self:
        object.__setattr__(self, "redis_url", redis_url_with_password(self.redis_url, self.redis_secrets_dir))
        return self


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_outage_log_filter_on_handlers()  # a broker outage: one line, then how long it lasts
    settings = ApiSettings()
    gateway = KafkaRedisGateway(settings.bootstrap_servers, settings.redis_url, settings.namespace)
    callers = Callers.from_directory(settings.api_secrets_dir)
    logging.getLogger("services.api").info(
        "%s callers have a token in %s%s",
        len(callers),
        settings.api_secrets_dir,
        "" if len(callers) else ": every /v1 request will be refused (run `h200 access secrets`)",
    )
    uvicorn.run(create_app(gateway, callers), host=settings.api_host, port=settings.api_port, log_level="info")


if __name__ == "__main__":
    main()
