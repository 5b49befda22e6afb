"""The measurements of bench-replay: whole replays, Kafka's ConsumerPerformance, stages timed apart, a profile."""

from __future__ import annotations

import cProfile
import gc
import itertools
import json
import os
import pstats
import re
import resource
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.record import _crc32c, util

import services.replay.eventlog as eventlog
from bench.fastdecode import cached_envelopes, fast_decode, same_as_codec
from schemas.codec import decode
from schemas.topics import EVENT_TOPICS
from services.replay.eventlog import build_log
from services.replay.kafka_io import read_topics
from services.replay.ledger import fold_ledger
from services.replay.records import LogRecord

Say = Callable[[str], None]
LIBS = Path(__file__).resolve().parent.parent / "infra/kafka/.cache/libs"
MB = 2**20

c_crc32c: Any
try:
    from crc32c import crc32c as c_crc32c
except ImportError:
    c_crc32c = None


@dataclass
class Rate:
    label: str
    records: int
    seconds: float
    size: int = 0

    @property
    def per_s(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds

    def line(self) -> str:
        return f"  {self.label:<58} {self.per_s:>10,.0f} msgs/s {self.mb_per_s:>7.1f} MB/s  ({self.seconds:.1f} s)"


# --- switches -----------------------------------------------------------------------------------------------------


@contextmanager
def crc(implementation: str) -> Iterator[str]:
    """kafka-python's CRC-32C check: `python` (its own, what pyproject installs) or `c` (the crc32c package)."""
    chosen = c_crc32c if implementation == "c" and c_crc32c is not None else _crc32c.crc
    saved = util.calc_crc32c.__defaults__
    util.calc_crc32c.__defaults__ = (chosen,)
    try:
        yield "C (crc32c package)" if chosen is c_crc32c else "pure Python (kafka-python's own)"
    finally:
        util.calc_crc32c.__defaults__ = saved


@contextmanager
def decoder(name: str) -> Iterator[None]:
    """The decode build_log uses: `codec` (schemas.codec.decode as is), `cached` or `fast` (bench/fastdecode.py)."""
    if name == "cached":
        with cached_envelopes():
            yield
        return
    setattr(eventlog, "decode", fast_decode if name == "fast" else decode)  # noqa: B010
    try:
        yield
    finally:
        setattr(eventlog, "decode", decode)  # noqa: B010


# --- whole replays ------------------------------------------------------------------------------------------------


def _counted(records: Iterable[LogRecord], total: list[int]) -> Iterator[LogRecord]:
    for record in records:
        total[0] += len(record.value or b"") + len(record.key or b"")
        yield record


def replay(bootstrap: str, label: str) -> tuple[Rate, str]:
    """What `h200 replay` does, minus printing: read every event topic, decode and dedup, fold the ledger."""
    gc.collect()
    size = [0]
    started = time.perf_counter()
    log = build_log(_counted(read_topics(bootstrap, EVENT_TOPICS), size), EVENT_TOPICS)
    ledger = fold_ledger(log.events)
    seconds = time.perf_counter() - started
    read = len(log.events) + log.duplicates + log.undecodable
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    summary = f"{len(ledger.lines):,} lines, ledger_hash {ledger.ledger_hash[:16]}, peak RSS {peak:,.0f} MB"
    return Rate(label, read, seconds, size[0]), summary


def consumer_performance(bootstrap: str, records: int, say: Say) -> tuple[Rate, Rate]:
    """Kafka's own consumer benchmark on the event topics: (whole run incl. group join, fetching only)."""
    include = "^(" + "|".join(re.escape(topic) for topic in EVENT_TOPICS) + ")$"
    command = [
        *("java", "-Xms256m", "-Xmx1g", "-cp", f"{LIBS}/*", "org.apache.kafka.tools.ConsumerPerformance"),
        *("--bootstrap-server", bootstrap, "--include", include, "--num-records", str(records)),
        *("--timeout", "60000", "--group", f"bench-{os.getpid()}-{time.time_ns()}"),
        *("--command-property", "isolation.level=read_committed"),
    ]
    say("  $ " + " ".join(command[5:]).replace(f"{LIBS}/*", "infra/kafka/.cache/libs/*"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if done.returncode != 0 or header is None or header + 1 >= len(lines):
        raise RuntimeError(f"ConsumerPerformance failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    say("    " + lines[header] + "\n    " + lines[header + 1])
    found = dict(zip(lines[header].split(", "), lines[header + 1].split(", "), strict=False))
    consumed, megabytes = int(found["data.consumed.in.nMsg"]), float(found["data.consumed.in.MB"])
    whole = consumed / float(found["nMsg.sec"]) if float(found["nMsg.sec"]) else float("inf")
    fetching = float(found["fetch.time.ms"]) / 1000
    label = "Kafka ConsumerPerformance"
    return (
        Rate(f"{label}, whole run (group join included)", consumed, whole, int(megabytes * MB)),
        Rate(f"{label}, fetch time only", consumed, fetching, int(megabytes * MB)),
    )


# --- stage by stage, on a sample ----------------------------------------------------------------------------------


def read_sample(bootstrap: str, counts: dict[str, int], sample: int) -> list[LogRecord]:
    """The first records of each event topic, in proportion to its size: the mix of the whole log."""
    total = sum(counts.values())
    records: list[LogRecord] = []
    for topic, count in counts.items():
        stream = read_topics(bootstrap, [topic])
        records += itertools.islice(stream, round(sample * count / total))
        stream.close()  # type: ignore[attr-defined]
    return records


def _timed(label: str, records: int, work: Callable[[], object], size: int = 0) -> Rate:
    gc.collect()
    started = time.perf_counter()
    work()
    return Rate(label, records, time.perf_counter() - started, size)


def stages_report(bootstrap: str, counts: dict[str, int], sample: int, say: Say) -> None:
    say(f"\nwhat limits ours: {sample:,} events of the same mix, each stage timed on its own")
    rates = []
    for implementation in ("python", "c"):
        with crc(implementation) as name:
            gc.collect()
            started = time.perf_counter()
            records = read_sample(bootstrap, counts, sample)
            seconds = time.perf_counter() - started
            size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
            rates.append(Rate(f"read: kafka-python, CRC-32C {name.split(' (')[0]}", len(records), seconds, size))
    values = [r.value or b"" for r in records]
    size = sum(map(len, values))
    say(
        f"  decoders agree: {same_as_codec(values[:: max(1, len(values) // 3000)]):,} records decode equally three ways"
    )
    rates.append(_timed("json.loads only (no validation)", len(values), lambda: [json.loads(v) for v in values], size))
    for name, label in (
        ("codec", "decode: schemas.codec.decode as is (json.loads + pydantic)"),
        ("cached", "decode: same, Envelope[model] cached"),
        ("fast", "decode: cached + model_validate_json on the bytes"),
    ):
        with decoder(name):
            rates.append(_timed(label + ", in build_log", len(records), lambda: build_log(records, EVENT_TOPICS), size))
    events = build_log(records, EVENT_TOPICS).events
    rates.append(_timed("fold: fold_ledger over the decoded events", len(events), lambda: fold_ledger(events)))
    for rate in rates:
        say(f"  {1e6 / rate.per_s:6.1f} us/event" + rate.line()[1:])
    for label, implementation, name in (("as shipped", "python", "codec"), ("with the speed-ups", "c", "fast")):
        with crc(implementation), decoder(name):
            profile_report(label, bootstrap, counts, sample, say)


CATEGORIES = (
    ("pydantic validation", ("pydantic",)),
    ("JSON parsing (json.loads)", ("json",)),
    ("Kafka client: record batches, CRC, fetch requests", ("/kafka/", "selectors", "socket", "_crc32c")),
    ("waiting for fetch responses (kafka-python's I/O thread)", ("_thread.lock",)),
    ("fold (services/replay/ledger.py)", ("replay/ledger",)),
    ("codec checks and upcast (schemas/codec, registry)", ("schemas/codec", "schemas/registry")),
    ("replay loop (services/replay: LogRecord, dedup by id)", ("services/replay",)),
)


def _category(where: str) -> str:
    return next((name for name, marks in CATEGORIES if any(mark in where for mark in marks)), "other")


def profile_report(label: str, bootstrap: str, counts: dict[str, int], sample: int, say: Say) -> None:
    """cProfile of a replay of the sample: own time summed by what it is spent on."""
    profile = cProfile.Profile()
    profile.enable()
    fold_ledger(build_log(read_sample(bootstrap, counts, sample), EVENT_TOPICS).events)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())
    spent: dict[str, float] = {}
    top = []
    for (path, line, function), (_, _, own, _, _) in stats.items():
        where = f"{path}:{function}"
        spent[_category(where)] = spent.get(_category(where), 0.0) + own
        top.append((own, f"{Path(path).name}:{line}({function})" if path != "~" else function))
    say(f"\ncProfile of a {sample:,}-event replay {label} (own time {total:.1f} s, profiler overhead included):")
    for name, own in sorted(spent.items(), key=lambda pair: -pair[1]):
        say(f"  {own / total:6.1%}  {name}")
    say("  top functions by own time:")
    for own, name in sorted(top, reverse=True)[:12]:
        say(f"    {own / total:6.1%}  {name[:110]}")


# --- the report ---------------------------------------------------------------------------------------------------


def report(bootstrap: str, records: int, counts: dict[str, int], sample: int, say: Say) -> None:
    say(f"\nreplay of the {records:,} event records, then Kafka's own consumer on the same topics")
    with crc("python") as name, decoder("codec"):
        before, before_ledger = replay(bootstrap, "ours without crc32c (kafka-python's pure-Python CRC)")
    say(before.line() + f"\n    CRC-32C {name}; {before_ledger}")
    with crc("c") as name, decoder("fast"):
        after, after_ledger = replay(bootstrap, "ours as shipped (crc32c, validation from bytes)")
    say(after.line() + f"\n    CRC-32C {name}, cached models, model_validate_json; {after_ledger}")
    if after_ledger.split(", peak")[0] != before_ledger.split(", peak")[0]:
        say("    LEDGERS DIFFER: the speed-ups changed the result")
    whole, fetching = consumer_performance(bootstrap, records, say)
    say(whole.line())
    say(fetching.line())
    say("\nratio ours / Kafka's (msgs/s; the aim is at least 0.5):")
    for ours in (before, after):
        say(
            f"  {ours.label:<58} {ours.per_s / fetching.per_s:6.3f} of fetch-only, "
            f"{ours.per_s / whole.per_s:6.3f} of whole-run"
        )
    stages_report(bootstrap, counts, sample, say)
