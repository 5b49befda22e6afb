"""The read commands of `h200` over the Redis read models: show (an order, or a buyer's orders) and ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import redis

from schemas.envelope import order_id_for
from services.ops.arguments import add_redis
from services.ops.settings import OpsSettings
from services.ops.views import buyer_orders_view, ledger_csv, ledger_json, ledger_view, order_view, totals_view
from services.projector.store import ReadModelStore, current_store


@contextmanager
def _store(settings: OpsSettings, namespace: str) -> Iterator[ReadModelStore]:
    """The read models under `namespace` now: the alias `<namespace>:current` followed if a rebuild set it."""
    with redis.Redis.from_url(settings.redis_url, decode_responses=True) as client:
        yield current_store(client, namespace)


def _show(args: argparse.Namespace, settings: OpsSettings) -> int:
    if args.buyer and not args.ref:
        with _store(settings, args.namespace) as store:
            listing = buyer_orders_view(store, args.buyer)
            known = ", ".join(sorted(store.buyers())) or "none"
        if listing is None:
            print(
                f"no orders of buyer {args.buyer} in the read model (namespace {store.ns}); buyers: {known}",
                file=sys.stderr,
            )
            return 1
        print(listing)
        return 0
    if args.ref and args.order:
        raise argparse.ArgumentTypeError("--ref goes with --buyer (e.g. --buyer tencent --ref TC-1), not --order")
    order_id = str(args.order) if args.order else str(order_id_for(args.buyer, args.ref))
    with _store(settings, args.namespace) as store:
        print(order_view(store, order_id))
        return 0 if store.order(order_id) else 1


def _ledger(args: argparse.Namespace, settings: OpsSettings) -> int:
    with _store(settings, args.namespace) as store:
        if args.format == "csv":
            sys.stdout.write(ledger_csv(store))
        elif args.format == "json":
            print(ledger_json(store))
        else:
            print(ledger_view(store))
            print()
            print(totals_view(store))
    return 0


def add_read_commands(commands: Any) -> None:
    show = commands.add_parser(
        "show",
        help="an order's status and decision trail, or a buyer's orders (from the read model)",
        description="--order ID, or --buyer B --ref R: one order with its trail. --buyer B alone: that buyer's "
        "orders, one line each.",
    )
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--order", type=UUID, help="order id")
    which.add_argument("--buyer", help="buyer id: its orders, or with --ref one of them")
    show.add_argument("--ref", help="the buyer's own order reference (with --buyer)")
    add_redis(show)
    show.set_defaults(run=_show)
    ledger = commands.add_parser("ledger", help="who got which batches, how many and when (from the read model)")
    ledger.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (with totals), csv (the lines) or json (lines and totals); default: table",
    )
    add_redis(ledger)
    ledger.set_defaults(run=_ledger)
