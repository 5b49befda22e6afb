"""bench-replay's `h200 verify` run: the whole audit of the same log, in a process of its own, beside the replay.

verify reads the allocation core's decisions, then every record once, each check keeping only its facts; its
peak RSS says what the checks keep. The generated log keeps every invariant but has no allocation inbox, so the
determinism check finds the recorded decisions unrefolded: that divergence is expected and named.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from typing import Any

from bench.stages import Run, Say, measured


def verify_command(bootstrap: str) -> list[str]:
    return [sys.executable, "-m", "services.ops", "verify", "--no-live", "--format", "json", "--bootstrap", bootstrap]


def verify_once(bootstrap: str) -> tuple[Run, dict[str, Any]]:
    with tempfile.TemporaryFile("w+") as out:
        code, seconds, peak = measured([*verify_command(bootstrap), "--no-progress"], out)
        out.seek(0)
        text = out.read()
    if code not in (0, 1) or not text.strip():
        raise RuntimeError(f"h200 verify exited {code} without a report")
    document: dict[str, Any] = json.loads(text)
    return Run(int(document["events"]), seconds, peak, str(document["ledger_hash"])), document


def verify_report(bootstrap: str, replay_hash: str, say: Say) -> None:
    say("\n`h200 verify` of the same log (every invariant, the trail, stable order, determinism), one run")
    say("  $ " + " ".join(verify_command(bootstrap)[1:]))
    run, document = verify_once(bootstrap)
    say(f"    {run.per_s:,.0f} events/s ({run.seconds:.1f} s), peak RSS {run.peak_mb:,.0f} MB")
    found = Counter(str(v["code"]) for v in [*document["violations"], *document["trail"]["violations"]])
    determinism = document["determinism"] or {}
    say(
        f"    violations {dict(found) or 'none'}; stable {document['stable']}; ledger_hash the replay's: "
        f"{document['ledger_hash'] == replay_hash}; determinism: {determinism.get('recorded', 0):,} decisions "
        f"recorded, {determinism.get('decided', 0):,} refolded (the generated log has no inbox)"
    )
