"""Who is calling the HTTP API, and for which buyer it may act (issue 10: a submission is bound to its sender).

Each buyer system gets a bearer token of its own (`h200 access secrets` writes one per buyer of
H200_BUYER_SYSTEMS into `<api_secrets_dir>/buyers/<buyer_id>`, mode 0600), and the auditor one
(`<api_secrets_dir>/auditor`), and the operator one (`<api_secrets_dir>/ops`). A buyer's token may submit, cancel,
file documents for and read only that buyer's orders; the auditor's reads every order, the ledger, the totals and
the dead letters and writes nothing; the operator's reads what the auditor reads and may re-drive a dead letter,
the one write of the console (an auditor who could re-send records would no longer be independent of what they
audit). No token, or one nobody was given, is refused: the API answers nobody anonymously. Tokens are kept as
SHA-256 digests and looked up by digest, so the comparison does not depend on how much of a guess matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

AUDITOR = "auditor"
OPS = "ops"
BUYERS = "buyers"
AUDITOR_VARIABLE = "H200_API_SECRET_AUDITOR"
OPS_VARIABLE = "H200_API_SECRET_OPS"
BUYERS_VARIABLE = "H200_API_SECRET_BUYERS"


@dataclass(frozen=True)
class Caller:
    name: str
    """`buyer:<buyer_id>`, `auditor` or `ops`: what logs and metrics call it."""
    buyer_id: str | None
    """The one buyer this caller acts for; None for the auditor and the operator."""

    def may_act_for(self, buyer_id: str) -> bool:
        return self.buyer_id == buyer_id

    def may_read(self, buyer_id: str) -> bool:
        return self.buyer_id is None or self.buyer_id == buyer_id


class CallerRefusedError(Exception):
    """A request refused for who sent it: 401 (no or unknown token) or 403 (not allowed for that buyer)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Callers:
    def __init__(self, tokens: dict[str, Caller], source: str = "") -> None:
        self._by_digest = {_digest(token): caller for token, caller in tokens.items()}
        self.source = source

    @classmethod
    def from_directory(cls, directory: Path, environ: Mapping[str, str] | None = None) -> Callers:
        """The tokens in `directory`: `buyers/<buyer_id>` files and the `auditor` file (missing ones: none); a
        container given no directory takes them from H200_API_SECRET_AUDITOR, H200_API_SECRET_OPS and
        H200_API_SECRET_BUYERS (a JSON object buyer -> token), which `h200 access secrets --export` prints."""
        env = os.environ if environ is None else environ
        tokens: dict[str, Caller] = {}
        for buyer, token in json.loads(env.get(BUYERS_VARIABLE) or "{}").items():
            tokens[str(token)] = Caller(f"buyer:{buyer}", str(buyer))
        if env.get(AUDITOR_VARIABLE):
            tokens[env[AUDITOR_VARIABLE]] = Caller(AUDITOR, None)
        if env.get(OPS_VARIABLE):
            tokens[env[OPS_VARIABLE]] = Caller(OPS, None)
        buyers = directory / BUYERS
        for path in sorted(buyers.iterdir()) if buyers.is_dir() else []:
            tokens[path.read_text(encoding="utf-8").strip()] = Caller(f"buyer:{path.name}", path.name)
        for role in (AUDITOR, OPS):
            if (directory / role).is_file():
                tokens[(directory / role).read_text(encoding="utf-8").strip()] = Caller(role, None)
        tokens.pop("", None)
        return cls(tokens, str(directory))

    def __len__(self) -> int:
        return len(self._by_digest)

    def identify(self, authorization: str | None) -> Caller:
        """The caller an `Authorization: Bearer <token>` header names, or a refusal saying what is missing."""
        if not self._by_digest:
            raise CallerRefusedError(
                401,
                "unauthenticated",
                f"this API has no tokens (none in {self.source or 'its secrets directory'}): run `h200 access secrets` "
                "with H200_BUYER_SYSTEMS naming the buyer systems, then restart the API",
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CallerRefusedError(
                401, "unauthenticated", "send `Authorization: Bearer <token>` with your buyer system's token"
            )
        caller = self._by_digest.get(_digest(token.strip()))
        if caller is None:
            raise CallerRefusedError(
                401, "unknown_token", "the bearer token is not one this API gave out (or it was rotated)"
            )
        return caller

    @staticmethod
    def check_acts_for(caller: Caller, buyer_id: str) -> None:
        if not caller.may_act_for(buyer_id):
            raise CallerRefusedError(
                403,
                "sender_not_buyer",
                f"{caller.name} may not act for buyer {buyer_id!r}: a buyer system submits and cancels only its own "
                "orders (the auditor and the operator submit nothing)",
            )

    @staticmethod
    def check_reads(caller: Caller, buyer_id: str | None) -> None:
        if buyer_id is None and caller.buyer_id is not None:
            raise CallerRefusedError(
                403,
                "auditor_only",
                f"{caller.name} may not read every buyer's allocations, totals or dead letters: the auditor or the "
                "operator only",
            )
        if buyer_id is not None and not caller.may_read(buyer_id):
            raise CallerRefusedError(403, "sender_not_buyer", f"{caller.name} may not read buyer {buyer_id!r}'s orders")

    @staticmethod
    def check_redrives(caller: Caller) -> None:
        """Only the operator re-sends a dead letter: the auditor reads and writes nothing, a buyer's system neither."""
        if caller.name != OPS:
            raise CallerRefusedError(
                403,
                "ops_only",
                f"{caller.name} may not re-drive dead letters: the operator's token (.run/secrets/api/ops) does; "
                "the auditor reads them and writes nothing",
            )
