"""`h200 tick --at ISO`: one tick of business time, written as the clock process writes it (producer `clock`),
for demos and tests that move business time explicitly. Refused, writing nothing, at or before the last tick."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.clock.settings import ClockSettings
from services.clock.ticks import refusal, tick_envelope, to_millisecond
from services.clock.topic import TOPIC, new_producer, read_last_tick, write_tick
from services.ops.arguments import add_bootstrap, when
from services.ops.kafka_clients import BrokerUnavailableError
from services.ops.settings import OpsSettings


def _tick(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap, timeout_s = settings.bootstrap_servers, settings.request_timeout_s
    at = to_millisecond(when(args.at))
    try:
        last = read_last_tick(bootstrap, args.clock_id, timeout_s)
    except Exception as error:
        raise BrokerUnavailableError(f"cannot read the last tick on {TOPIC} at {bootstrap}: {error}") from None
    refused = refusal(last, at)
    if refused:
        print(f"nothing written: {refused}", file=sys.stderr)
        return 1
    producer = new_producer(bootstrap, timeout_s)
    try:
        write_tick(producer, tick_envelope(args.clock_id, at), timeout_s)
    finally:
        producer.close(timeout=timeout_s)
    before = last.isoformat() if last else "none before"
    print(f"published a tick of clock {args.clock_id} at {at.isoformat()} to {TOPIC} on {bootstrap} (last: {before})")
    return 0


def add_tick_command(commands: Any) -> None:
    tick = commands.add_parser(
        "tick",
        help="move business time: write one clock tick at --at (refused at or before the last tick)",
        description="Writes ClockTicked(at) to h200.clock as the clock process does. What falls due at or before "
        "it (a policy coming into force, a licence that ends, an approval left unfilled) is decided on it.",
    )
    tick.add_argument("--at", help="ISO 8601 time (default: now)")
    tick.add_argument("--clock-id", default=ClockSettings().clock_id, help="the clock (default: h200)")
    add_bootstrap(tick)
    tick.set_defaults(run=_tick)
