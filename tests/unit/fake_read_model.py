"""The projector's Redis commands applied to a dictionary: a read model without Redis, for unit tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from schemas.envelope import Envelope
from services.projector.projection import project


class FakeReadModel:
    """The read model as the projector builds it (services.projector.projection.project), in a dict: what
    services.replay.live reads from Redis, without Redis."""

    def __init__(self, namespace: str = "h200") -> None:
        self.ns = namespace
        self.data: dict[str, Any] = {}
        self.applied: set[str] = set()

    def apply(self, envelopes: Iterable[Envelope[Any]]) -> FakeReadModel:
        for envelope in envelopes:
            if str(envelope.id) in self.applied:
                continue
            self.applied.add(str(envelope.id))
            for command, key, *args in project(self.ns, envelope):
                self._run(command, key, args)
        return self

    def _run(self, command: str, key: str, args: list[str]) -> None:
        if command == "HSET":
            self.data.setdefault(key, {}).update(dict(zip(args[::2], args[1::2], strict=True)))
        elif command == "HSETNX":
            self.data.setdefault(key, {}).setdefault(args[0], args[1])
        elif command == "HINCRBY":
            fields = self.data.setdefault(key, {})
            fields[args[0]] = str(int(fields.get(args[0], "0")) + int(args[1]))
        elif command == "HDEL":
            self.data.get(key, {}).pop(args[0], None)
        elif command == "SADD":
            self.data.setdefault(key, set()).update(args)
        elif command == "ZADD":
            self.data.setdefault(key, {})[args[1]] = float(args[0])
        elif command == "RPUSH":
            self.data.setdefault(key, []).extend(args)

    def _hash(self, key: str) -> dict[str, str]:
        return dict(self.data.get(key, {}))

    def _ranked(self, key: str) -> list[str]:
        members = self.data.get(key, {})
        return sorted(members, key=lambda member: (members[member], member))

    def ledger(self) -> list[dict[str, str]]:
        return [self._hash(f"{self.ns}:line:{i}") for i in self._ranked(f"{self.ns}:ledger")]

    def batches(self) -> dict[str, dict[str, str]]:
        return {b: self._hash(f"{self.ns}:batch:{b}") for b in self._ranked(f"{self.ns}:batches")}

    def buyers(self) -> dict[str, dict[str, str]]:
        return {b: self._hash(f"{self.ns}:buyer:{b}") for b in sorted(self.data.get(f"{self.ns}:buyers", set()))}

    def orders(self) -> dict[str, dict[str, str]]:
        return {o: self._hash(f"{self.ns}:order:{o}") for o in sorted(self.data.get(f"{self.ns}:orders", set()))}

    def order(self, order_id: str) -> dict[str, str]:
        return self._hash(f"{self.ns}:order:{order_id}")

    def trail(self, order_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.data.get(f"{self.ns}:order:{order_id}:trail", [])]

    def positions(self) -> dict[tuple[str, int], int]:
        """One partition whose position is the count of events applied (the projector's are per partition)."""
        return {("h200.events", 0): len(self.applied)} if self.applied else {}

    def dead_letters(self) -> dict[str, int]:
        return {}
