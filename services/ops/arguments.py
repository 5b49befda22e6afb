"""Argument types and options the commands of `h200` share."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def when(text: str | None) -> datetime:
    """An ISO 8601 time with its zone; now when none is given."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-02-01T09:00:00+00:00)") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add +00:00 or Z")
    return moment


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def add_bootstrap(parser: argparse.ArgumentParser) -> None:
    help_ = "Kafka bootstrap servers for this call (default: $H200_BOOTSTRAP_SERVERS)"
    parser.add_argument("--bootstrap", metavar="SERVERS", help=help_)


def add_redis(parser: argparse.ArgumentParser) -> None:
    help_ = "the read models' Redis for this call (default: $H200_REDIS_URL)"
    parser.add_argument("--redis-url", metavar="URL", help=help_)
    parser.add_argument("--namespace", default="h200", help="read-model namespace in Redis (default: h200)")


def add_wait(parser: argparse.ArgumentParser, service: str) -> None:
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help=f"do not wait for {service}'s answer (exit 0 once the broker has the message)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help=f"how long to wait for {service}'s answer (default: 30); no answer in time exits 3",
    )
