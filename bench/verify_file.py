"""`h200 verify` of a generated log read from an export file, in a process of its own: its peak RSS without a broker.

bench-replay measures verify against Kafka beside the replay; this one needs no broker, so verify's memory can be
measured at 1M and 5M events on a laptop in minutes: it writes bench.eventgen's log as an export file (partitions as
the producers' key hash would spread them, broker-stamped times) and runs `h200 verify --from-file` on it, printing
events/s, the peak RSS (the child's own VmHWM, bench/stages.py) and what verify found.

    python -m bench.verify_file --events 1000000 [--file PATH (kept; written only if missing)]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from bench.eventgen import generate
from bench.stages import measured
from schemas.topics import BY_NAME
from services.replay.exportfile import make_header, write_export
from services.replay.records import LogRecord

ARRIVED_MS = 1_700_000_000_000


def write_log(events: int, path: Path) -> int:
    """bench.eventgen's log of about `events` records as an export file; the records written."""
    # the topics of the log: its first records hold every one (the policies, the batches, then whole stories)
    topics = sorted({record.topic for record in itertools.islice(generate(events), 5_000)})
    offsets: dict[tuple[str, int], int] = {}

    def records() -> Iterator[LogRecord]:
        for record in generate(events):
            partition = zlib.crc32(record.key) % BY_NAME[record.topic].partitions
            offset = offsets.get((record.topic, partition), 0)
            offsets[(record.topic, partition)] = offset + 1
            yield LogRecord(record.topic, partition, offset, record.key, record.value, ARRIVED_MS, (), 0)

    write_export(path, make_header("bench.eventgen", topics), records())
    return sum(offsets.values())


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, help="export file to use (written there if missing, and kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="h200-verify-bench-") as scratch:
        path = args.file or Path(scratch) / "log.jsonl"
        if path.exists():
            say(f"using {path} as it is ({path.stat().st_size / 1e6:,.0f} MB)")
        else:
            say(f"writing about {args.events:,} generated events to {path} ...")
            written = write_log(args.events, path)
            say(f"  {written:,} records, {path.stat().st_size / 1e6:,.0f} MB")
        command = [sys.executable, "-m", "services.ops", "verify", "--from-file", str(path), "--no-live"]
        say("  $ " + " ".join(command[1:]) + " --format json --no-progress")
        with tempfile.TemporaryFile("w+") as out:
            code, seconds, peak = measured([*command, "--format", "json", "--no-progress"], out)
            out.seek(0)
            text = out.read()
        if code not in (0, 1) or not text.strip():
            sys.stderr.write(f"h200 verify exited {code} without a report\n")
            return 1
        report = json.loads(text)
        events = int(report["events"])
        found = [v["code"] for v in [*report["violations"], *report["trail"]["violations"]]]
        rate = events / seconds
        say(f"    {events:,} events in {seconds:.1f} s ({rate:,.0f} events/s), peak RSS {peak:,.0f} MB")
        stable, ledger_hash = report["stable"], report["ledger_hash"][:12]
        say(f"    violations {len(found)} {sorted(set(found))}, stable {stable}, ledger hash {ledger_hash}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
