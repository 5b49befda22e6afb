"""The version of a core: its name and a digest of the code that decides, so that a changed core is told apart
from the one that made a recorded decision without anyone having to remember to bump a number."""

from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path
from typing import Any

import services.common.decider as decider
import services.domain_kit as domain_kit

DIGEST_CHARS = 16


def core_version(core: Any) -> str:
    """`NAME@digest`: a core's own VERSION when it declares one (tests), else the SHA-256 of the sources of its
    package, of the decider (which derives the ids of what it decides) and of services.domain_kit (the pure parts
    the cores share: what they decide and what their snapshots hold depends on it too)."""
    declared = getattr(core, "VERSION", None)
    if isinstance(declared, str):
        return f"{core.NAME}@{declared}"
    hasher = hashlib.sha256()
    for path in version_sources(core):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{core.NAME}@{hasher.hexdigest()[:DIGEST_CHARS]}"


def version_sources(core: Any) -> list[Path]:
    """The files whose text makes a core's version."""
    kit = sorted(Path(inspect.getfile(domain_kit)).parent.rglob("*.py"))
    return [*_sources(core), Path(inspect.getfile(decider)), *kit]


def _sources(core: Any) -> list[Path]:
    module = (
        core
        if inspect.ismodule(core)
        else sys.modules[type(core).__module__ if not inspect.isclass(core) else core.__module__]
    )
    source = Path(inspect.getfile(module))
    if source.name == "__init__.py":  # a package: every module of it
        return sorted(source.parent.rglob("*.py"))
    return [source]
