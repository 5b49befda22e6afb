"""The write commands of `h200`: publish, supply, allocation-rule, fulfil, tick. Each says what it wrote, or that it
wrote nothing and why. Orders and shipment reports are decided by a service: the command waits for that answer (the
event caused by the message it sent) and prints it; a refusal exits 1, no answer within --timeout exits 3."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
from schemas.fulfilment import RecordFulfilmentStep
from schemas.policy import AllocationPolicySet
from schemas.routing import home_topic
from schemas.supply import BatchManufactured
from services.ops import following
from services.ops.allocation_rule import change, in_force
from services.ops.arguments import add_bootstrap, add_wait, positive, when
from services.ops.outcomes import OrderWatch, Outcome, StepWatch, Watch, exit_code, settle
from services.ops.publish import load_file, publish, summarise
from services.ops.settings import OpsSettings
from services.ops.tick import add_tick_command
from services.replay.kafka_io import read_topics

ANSWERS = {"SubmitOrder": ("h200.orders", OrderWatch), "RecordFulfilmentStep": ("h200.fulfilment", StepWatch)}
"""Messages a service answers, the topic its answer is recorded on and the watch that recognises it."""

STEPS = ("packed", "shipped", "customs_cleared", "delivered", "held", "released", "lost", "refused")


def _label(envelope: Envelope[Message]) -> str:
    payload: Any = envelope.payload
    if isinstance(payload, RecordFulfilmentStep):
        return f"{payload.step} of allocation {payload.allocation_id}"
    return f"{payload.buyer_id}/{payload.upstream_ref}"


def _sent(sent: Sequence[Envelope[Message]], bootstrap: str) -> None:
    topics = ", ".join(sorted({home_topic(e.payload).name for e in sent}))
    print(f"published {summarise(sent)} to {topics} on {bootstrap}")


def send(args: argparse.Namespace, settings: OpsSettings, payloads: Sequence[Message], producer_name: str) -> int:
    """Publish, then print each answered message's outcome (unless --no-wait) and exit by the worst of them."""
    bootstrap = settings.bootstrap_servers
    answered = {ANSWERS[p.TYPE][0] for p in payloads if p.TYPE in ANSWERS}
    history = {topic: following.ends(bootstrap, topic) for topic in sorted(answered)} if args.wait else {}
    sent = publish(bootstrap, payloads, producer_name)
    _sent(sent, bootstrap)
    if not answered:
        return 0
    if not args.wait:
        print(f"not waiting for the answers on {', '.join(sorted(answered))} (--no-wait)")
        return 0
    outcomes: list[Outcome] = []
    for topic, ends in history.items():
        waited = [(e, ANSWERS[e.type][1](e)) for e in sent if e.type in ANSWERS and ANSWERS[e.type][0] == topic]
        watches: list[Watch] = [watch for _, watch in waited]
        stream = following.follow(bootstrap, topic, {w.key for w in watches}, ends, args.timeout)
        for (envelope, _), outcome in zip(waited, settle(watches, stream, args.timeout), strict=True):
            print(f"  {envelope.type} {_label(envelope)}: {outcome.text}")
            outcomes.append(outcome)
    return exit_code(outcomes)


def _publish(args: argparse.Namespace, settings: OpsSettings) -> int:
    payloads = load_file(args.file)
    if not payloads:
        print(f"nothing written: {args.file} holds no messages")
        return 0
    return send(args, settings, payloads, args.producer)


def _fulfil(args: argparse.Namespace, settings: OpsSettings) -> int:
    step = RecordFulfilmentStep(allocation_id=args.allocation, step=args.step, at=when(args.at), note=args.note)
    return send(args, settings, [step], "logistics")


def _supply(args: argparse.Namespace, settings: OpsSettings) -> int:
    batch = BatchManufactured(
        batch_id=args.batch, pool_id=args.pool, quantity=args.quantity, site=args.site, ready_at=when(args.ready_at)
    )
    _sent(publish(settings.bootstrap_servers, [batch]), settings.bootstrap_servers)
    return 0


def _policies(bootstrap: str) -> list[Envelope[Message]]:
    found = []
    for record in read_topics(bootstrap, ["h200.policy"]):
        try:
            found.append(decode(record.value or b""))
        except ContractError:
            continue  # verify names it; it is no revision of anything
    return found


def _rule(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap = settings.bootstrap_servers
    current = in_force(_policies(bootstrap), args.pool)
    decided = change(current, args.pool, args.rule, args.revision)
    if decided.revision is None:
        print(decided.text)
        return decided.exit_code
    rule = AllocationPolicySet(
        policy_id=f"allocation/{args.pool}",
        revision=decided.revision,
        effective_at=when(args.at),
        issued_by=args.issued_by,
        pool_id=args.pool,
        rule=args.rule,
    )
    publish(bootstrap, [rule])
    before = f"revision {current.revision} allocated by {current.rule}" if current else "no revision before"
    print(
        f"published revision {rule.revision} of {rule.policy_id}: {rule.rule} from {rule.effective_at.isoformat()} "
        f"to h200.policy on {bootstrap} ({before})"
    )
    return 0


def _allocation_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an allocation id: {text!r} (the full id from the allocation_id column of `h200 ledger`)"
        ) from None


def add_write_commands(commands: Any) -> None:
    pub = commands.add_parser(
        "publish",
        help="publish messages from a file: JSON array, JSON lines (each with `type`), or a CSV of orders; waits "
        "for intake's answer to each order and fulfilment's to each shipment report",
    )
    pub.add_argument("file", type=Path)
    pub.add_argument("--producer", default="ops", help="producer name written into the envelopes")
    add_wait(pub, "the deciding service")
    add_bootstrap(pub)
    pub.set_defaults(run=_publish)
    supply = commands.add_parser("supply", help="announce a manufactured batch")
    supply.add_argument("--batch", required=True)
    supply.add_argument("--quantity", required=True, type=positive)
    supply.add_argument("--site", required=True)
    supply.add_argument("--pool", default="h200")
    supply.add_argument("--ready-at", help="ISO 8601 time (default: now)")
    add_bootstrap(supply)
    supply.set_defaults(run=_supply)
    rule = commands.add_parser(
        "allocation-rule",
        help="choose a pool's allocation rule (a versioned policy event); writes nothing if it would change nothing",
    )
    rule.add_argument("--pool", default="h200")
    rule.add_argument("--rule", required=True, choices=["first_approved_first_served", "pro_rata"])
    rule.add_argument(
        "--revision", type=positive, help="above the pool's current one (default: the next one, read from h200.policy)"
    )
    rule.add_argument("--at", help="effective time, ISO 8601 (default: now)")
    rule.add_argument("--issued-by", default="h200 operations")
    add_bootstrap(rule)
    rule.set_defaults(run=_rule)
    fulfil = commands.add_parser(
        "fulfil", help="report a shipment step of an allocation and print what fulfilment recorded or refused"
    )
    fulfil.add_argument("--allocation", required=True, type=_allocation_id, help="the allocation id (`h200 ledger`)")
    fulfil.add_argument("--step", required=True, choices=STEPS)
    fulfil.add_argument("--at", help="ISO 8601 time (default: now)")
    fulfil.add_argument("--note")
    add_wait(fulfil, "fulfilment")
    add_bootstrap(fulfil)
    fulfil.set_defaults(run=_fulfil)
    add_tick_command(commands)
