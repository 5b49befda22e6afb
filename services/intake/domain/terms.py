"""What intake keeps of an order's terms and documents: compact, since it keeps every (buyer, reference) for good (a
reference is bound to its first terms), issue #9.

The terms are kept as their fingerprint: a 16-byte BLAKE2b digest of each term (TERM_FIELDS, in order) over its
canonical JSON, with the order of lists ignored where it means nothing (declared uses, documents). A resend is
compared term by term: two terms differ exactly when their digests do (`changed_terms`), which is all a decision
asks. The documents on file are kept as the JSON of their list, read back only when more are filed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import cast

from pydantic import TypeAdapter
from pydantic_core import to_json

from schemas.intake import OrderTerms, SupportingDocument

TERM_FIELDS: tuple[str, ...] = tuple(OrderTerms.model_fields)
UNORDERED_FIELDS = frozenset({"declared_uses", "documents"})
"""Terms that are lists whose order means nothing: compared as sets."""
WIDTH = 16
_DOCUMENTS: TypeAdapter[tuple[SupportingDocument, ...]] = TypeAdapter(tuple[SupportingDocument, ...])


def fingerprint(terms: OrderTerms) -> bytes:
    """One digest a term, in TERM_FIELDS order."""
    return b"".join(_digest(name, getattr(terms, name)) for name in TERM_FIELDS)


def changed_terms(recorded: bytes, resent: bytes) -> list[str]:
    """The names of the terms whose digests differ, in TERM_FIELDS order."""
    return [
        name
        for index, name in enumerate(TERM_FIELDS)
        if recorded[index * WIDTH : (index + 1) * WIDTH] != resent[index * WIDTH : (index + 1) * WIDTH]
    ]


def _digest(name: str, value: object) -> bytes:
    if name in UNORDERED_FIELDS:
        # As a set: order and repeats ignored, as the comparison of terms has always ignored them.
        items = cast(Iterable[object], value)
        canonical = b"[" + b",".join(sorted({to_json(item) for item in items})) + b"]"
    else:
        canonical = to_json(value)
    return hashlib.blake2b(canonical, digest_size=WIDTH, person=name.encode()[:16]).digest()


def pack_documents(documents: dict[str, SupportingDocument]) -> bytes:
    return _DOCUMENTS.dump_json(tuple(documents.values())) if documents else b""


def unpack_documents(packed: bytes) -> dict[str, SupportingDocument]:
    """Documents on file by id, in the order they were filed."""
    if not packed:
        return {}
    return {document.document_id: document for document in _DOCUMENTS.validate_json(packed)}
