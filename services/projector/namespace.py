"""Which Redis namespace holds the read models now: one alias key, `<base>:current`, names it.

Readers and the projector resolve the alias (absent: the base name itself, as before any rebuild). A rebuild
fills a fresh namespace `<base>@<n>`, then moves the alias with a compare-and-set: readers see the old read
model or the new one, never none. The alias is also the projector's write fence (see store.APPLY).
"""

from __future__ import annotations

import re
from typing import Any

CONTROL_SUFFIXES = ("current", "generation", "rebuild")
"""Keys `<base>:<suffix>` that steer the namespaces; they are not part of any read model."""

SWITCH = """
local current = redis.call('GET', KEYS[1]) or ARGV[1]
if current ~= ARGV[2] then return current end
redis.call('SET', KEYS[1], ARGV[3])
return ''
"""

DELETE_CHUNK = 500


def alias_key(base: str) -> str:
    return f"{base}:current"


def current_namespace(client: Any, base: str) -> str:
    """The namespace readers should read under `base` now (a name without an alias is its own namespace)."""
    value = client.get(alias_key(base))
    if value is None:
        return base
    return value.decode() if isinstance(value, bytes) else str(value)


def fresh_namespace(client: Any, base: str) -> str:
    """A namespace name under `base` never used before: `<base>@<n>`, n counted in `<base>:generation`."""
    while True:
        name = f"{base}@{int(client.incr(f'{base}:generation'))}"
        if not any(True for _ in client.scan_iter(match=f"{_glob_escape(name)}:*", count=1000)):
            return name


def switch_namespace(client: Any, base: str, expected: str, new: str) -> str | None:
    """Point the alias at `new` if it still names `expected`; else return what it names now (nothing moved)."""
    found = client.eval(SWITCH, 1, alias_key(base), base, expected, new)
    found = found.decode() if isinstance(found, bytes) else found
    return None if found == "" else str(found)


def delete_namespace(client: Any, namespace: str, base: str) -> int:
    """Delete every key of a namespace, found with SCAN and unlinked in chunks; the alias keys stay."""
    control = {f"{base}:{suffix}" for suffix in CONTROL_SUFFIXES}
    deleted = 0
    chunk: list[Any] = []
    for key in client.scan_iter(match=f"{_glob_escape(namespace)}:*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if name in control:
            continue
        chunk.append(key)
        if len(chunk) >= DELETE_CHUNK:
            deleted += int(client.unlink(*chunk))
            chunk = []
    if chunk:
        deleted += int(client.unlink(*chunk))
    return deleted


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
