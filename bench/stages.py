"""The measurements of bench-replay: whole replays in their own processes, Kafka's ConsumerPerformance, each stage
of ours timed apart, and a py-spy profile of a whole replay."""

from __future__ import annotations

import gc
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from schemas.codec import decode
from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import java_properties
from services.ops.kafka_clients import reader
from services.replay.bulk_read import read_topics
from services.replay.ledger import LedgerFold
from services.replay.reading import Reading, read_events
from services.replay.records import LogRecord

Say = Callable[[str], None]
REPO = Path(__file__).resolve().parent.parent
LIBS = REPO / "infra/kafka/.cache/libs"
MB = 2**20


@dataclass(frozen=True)
class Run:
    events: int
    seconds: float
    peak_mb: float = 0.0
    ledger_hash: str = ""

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


def spread(values: Sequence[float], form: str = "{:,.0f}") -> str:
    """min / median / max."""
    return " / ".join(form.format(v) for v in (min(values), statistics.median(values), max(values)))


# --- whole replays, as an operator runs them ----------------------------------------------------------------------


def replay_command(bootstrap: str) -> list[str]:
    return [sys.executable, "-m", "services.ops", "replay", "--format", "json", "--bootstrap", bootstrap]


def peak_rss_mb(pid: int) -> float:
    """The process's own high-water RSS (VmHWM), NaN once it is gone."""
    return _status_mb(pid, "VmHWM:")


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _pss_mb(pid: int) -> float:
    """The process's share of the memory it maps (PSS): pages it shares with its forked children count once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def measured(command: list[str], stdout: IO[str]) -> tuple[int, float, float]:
    """Run `command` to its end: its exit code, seconds, and its peak RSS in MB, read from /proc while it runs: its
    own high-water mark, or, when it has children (a replay read by several processes), the largest sum of its and
    their PSS seen (every 50 ms: a page they share counts once). Not the rusage wait4 gives: on Linux a child's
    ru_maxrss starts from its parent's RSS at the fork, and this parent holds what it wrote and the ledgers it
    parsed (a child doing nothing reported 811 MB beside an 800 MB parent), which had inflated every replay after
    the first and the verify run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, cwd=REPO)
    peak = 0.0
    while process.poll() is None:
        found = peak_rss_mb(process.pid)
        children = _children(process.pid)
        if children:
            together = sum(_pss_mb(each) for each in (process.pid, *children))
            found = max(found, together) if together == together else found  # NaN: one ended meanwhile
        peak = found if found > peak else peak  # NaN (gone between poll and read) keeps the last reading
        time.sleep(0.05)
    return process.returncode, time.perf_counter() - started, peak


def replay_once(bootstrap: str, *extra: str) -> Run:
    """`h200 replay --format json` in a process of its own: wall time, its own peak RSS, the ledger it printed."""
    with tempfile.TemporaryFile("w+") as out:
        code, seconds, peak = measured([*replay_command(bootstrap), "--no-progress", *extra], out)
        if code != 0:
            raise RuntimeError(f"h200 replay exited {code}")
        out.seek(0)
        document = json.load(out)
    return Run(document["events"], seconds, peak, document["ledger_hash"])


def startup_seconds() -> float:
    """What a replay pays before it reads: starting Python and importing the CLI."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import services.ops.cli"], check=True, cwd=REPO)
    return time.perf_counter() - started


def consumer_performance(bootstrap: str, records: int, say: Say) -> tuple[Run, Run]:
    """Kafka's own consumer benchmark on the event topics: (whole run incl. group join, fetching only)."""
    include = "^(" + "|".join(re.escape(topic) for topic in EVENT_TOPICS) + ")$"
    command = [
        *("java", "-Xms256m", "-Xmx1g", "-cp", f"{LIBS}/*", "org.apache.kafka.tools.ConsumerPerformance"),
        *("--bootstrap-server", bootstrap, "--include", include, "--num-records", str(records)),
        *("--timeout", "60000", "--group", f"bench-{os.getpid()}-{time.time_ns()}"),
        *("--command-property", "isolation.level=read_committed"),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as login:  # mode 0600: it holds a password
        login.write(java_properties())
        login.flush()
        done = subprocess.run(
            [*command, "--command-config", login.name], capture_output=True, text=True, timeout=1800, check=False
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if done.returncode != 0 or header is None or header + 1 >= len(lines):
        raise RuntimeError(f"ConsumerPerformance failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    found = dict(zip(lines[header].split(", "), lines[header + 1].split(", "), strict=False))
    consumed = int(found["data.consumed.in.nMsg"])
    whole = consumed / float(found["nMsg.sec"]) if float(found["nMsg.sec"]) else float("inf")
    return Run(consumed, whole), Run(consumed, float(found["fetch.time.ms"]) / 1000)


def report(bootstrap: str, records: int, runs: int, say: Say) -> str:
    """Prints the figures; returns the ledger hash the replays printed."""
    say(f"\nthe {records:,} event records: `h200 replay --format json` and ConsumerPerformance, {runs} run(s) each")
    jobs = str(max(2, os.cpu_count() or 1))
    ways = {"one process (the default)": (), f"{jobs} processes (--jobs {jobs})": ("--jobs", jobs)}
    ours: dict[str, list[Run]] = {}
    for way, extra in ways.items():
        say("  $ " + " ".join([*replay_command(bootstrap)[1:], *extra]) + f"   ({way})")
        ours[way] = []
        for n in range(runs):
            ours[way].append(replay_once(bootstrap, *extra))
            run = ours[way][-1]
            say(f"    run {n + 1}: {run.per_s:,.0f} events/s ({run.seconds:.1f} s), peak RSS {run.peak_mb:,.0f} MB")
    hashes = {r.ledger_hash for way in ours.values() for r in way}
    first = next(iter(ours.values()))[0].ledger_hash
    say(f"    ledger_hash {first} (the same every run, both ways: {len(hashes) == 1})")
    say(f"    of which starting Python and importing the CLI: {startup_seconds():.1f} s")
    say(
        "  $ java org.apache.kafka.tools.ConsumerPerformance --include '^(event topics)$' --num-records " + str(records)
    )
    kafka = [consumer_performance(bootstrap, records, say) for _ in range(runs)]
    for n, (whole, fetching) in enumerate(kafka):
        say(f"    run {n + 1}: {fetching.per_s:,.0f} records/s fetching, {whole.per_s:,.0f} records/s whole run")
    say(f"\n  {'min / median / max of ' + str(runs) + ' runs':<52} {'per second':>30}   peak RSS (MB)")
    for way, done in ours.items():
        say(f"  {'ours, ' + way:<52} {spread([r.per_s for r in done]):>30}   {spread([r.peak_mb for r in done])}")
    say(f"  {'Kafka ConsumerPerformance, fetch time only':<52} {spread([k[1].per_s for k in kafka]):>30}")
    say(f"  {'Kafka ConsumerPerformance, whole run':<52} {spread([k[0].per_s for k in kafka]):>30}")
    for way, done in ours.items():
        ratio = [done[n].per_s / kafka[n][1].per_s for n in range(runs)]
        say(f"  {'ratio ours / fetch-only, ' + way:<52} {spread(ratio, '{:.3f}'):>30}   (the aim: at least 0.5)")
    return first


def checkpoint_report(bootstrap: str, directory: Path, write_more: Callable[[], tuple[int, int]], say: Say) -> None:
    """A whole replay that writes a ledger checkpoint, more events written, then the longer log replayed from the
    checkpoint and whole: both ledgers must hash the same."""
    shutil.rmtree(directory, ignore_errors=True)
    say(f"\nledger checkpoints (h200 replay --checkpoints {directory})")
    writing = replay_once(bootstrap, "--checkpoints", str(directory))
    size = sum(path.stat().st_size for path in directory.glob("*.checkpoint"))
    say(
        f"  whole replay writing a checkpoint: {writing.seconds:.1f} s, peak RSS {writing.peak_mb:,.0f} MB, "
        f"checkpoint {size / 2**20:,.0f} MB"
    )
    added, _ = write_more()
    say(f"  then {added:,} more records written")
    whole = replay_once(bootstrap)
    since = replay_once(bootstrap, "--checkpoints", str(directory))
    rows = (("whole replay of the longer log", whole), ("replay from the checkpoint (reads the rest)", since))
    for label, run in rows:
        say(f"  {label:<44} {run.seconds:>8.1f} s {run.per_s:>10,.0f} events/s   peak RSS {run.peak_mb:,.0f} MB")
    say(
        f"  same ledger_hash: {whole.ledger_hash == since.ledger_hash} ({since.ledger_hash}); "
        f"{whole.seconds / since.seconds:.1f}x faster"
    )
    shutil.rmtree(directory, ignore_errors=True)


# --- stage by stage -----------------------------------------------------------------------------------------------


def _timed(work: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _kafka_python_sample(bootstrap: str, sample: int) -> list[LogRecord]:
    """The first records of the event topics read with kafka-python, the client replay read with before."""
    found: list[LogRecord] = []
    with reader(bootstrap, max_partition_fetch_bytes=16 * MB, fetch_max_bytes=16 * MB) as consumer:
        from kafka import TopicPartition

        for topic in EVENT_TOPICS:
            for number in sorted(consumer.partitions_for_topic(topic) or ()):
                tp = TopicPartition(topic, number)
                consumer.assign([tp])
                consumer.seek_to_beginning(tp)
                end = consumer.end_offsets([tp])[tp]
                while consumer.position(tp) < end and len(found) < sample:
                    for batch in consumer.poll(timeout_ms=1000, max_records=10_000).values():
                        found += [LogRecord(topic, number, r.offset, r.key, r.value) for r in batch]
                if len(found) >= sample:
                    return found[:sample]
    return found


def stages_report(bootstrap: str, counts: dict[str, int], sample: int, say: Say) -> None:
    total = sum(counts.values())
    say("\nwhat limits ours: each stage on its own, in this process (us per event, events/s)")
    rows: list[tuple[str, int, float]] = []
    seconds = _timed(lambda: sum(1 for _ in read_topics(bootstrap, EVENT_TOPICS)))
    rows.append(("read, whole log: confluent-kafka (services.replay.bulk_read)", total, seconds))
    kept: list[list[LogRecord]] = []
    seconds = _timed(lambda: kept.append(_kafka_python_sample(bootstrap, sample)))
    rows.append(("read, first records: kafka-python (the client before)", len(kept[0]), seconds))
    records = list(itertools.islice(read_topics(bootstrap, EVENT_TOPICS), sample))
    values = [r.value or b"" for r in records]
    # Nothing decoded is kept, as in a replay: a list of 100k envelopes would time the garbage collector too.
    rows.append(("json.loads alone (no validation)", len(values), _timed(lambda: _each(json.loads, values))))
    rows.append(("decode: schemas.codec.decode (pydantic)", len(values), _timed(lambda: _each(decode, values))))
    events = [read.envelope for read in read_events(records, Reading(EVENT_TOPICS))]
    rows.append(("fold: LedgerFold.add over decoded events", len(events), _timed(lambda: _fold(events))))
    rows.append(("read_events + fold of records in memory", len(records), _timed(lambda: _fold_records(records))))
    for label, count, spent in rows:
        say(f"  {spent / count * 1e6:7.1f} us  {count / spent:>10,.0f}/s  {label} ({count:,})")


def _each(work: Callable[[bytes], object], values: list[bytes]) -> None:
    for value in values:
        work(value)


def _fold(events: Iterable[object]) -> None:
    fold = LedgerFold()
    for envelope in events:
        fold.add(envelope)  # type: ignore[arg-type]
    fold.ledger()


def _fold_records(records: list[LogRecord]) -> None:
    _fold(read.envelope for read in read_events(records, Reading(EVENT_TOPICS)))


CATEGORIES = (
    ("decode: pydantic validation (schemas/codec.py validate_json)", ("schemas/codec.py:88",)),
    ("decode: canonical-form check (schemas/codec.py to_json)", ("schemas/codec.py:93",)),
    ("decode: the rest (schemas: codec, UUID and time checks)", ("schemas/", "pydantic")),
    ("Kafka client: consume, LogRecord (services/replay/bulk_read.py)", ("bulk_read.py", "confluent_kafka")),
    ("reading loop: arrival, dedup (services/replay/reading.py, records.py)", ("reading.py", "records.py")),
    ("fold (services/replay/ledger.py)", ("ledger.py",)),
    ("printing the ledger (render, json)", ("render.py", "selection.py")),
    ("starting up: imports", ("<frozen importlib", "importlib")),
)


def _category(stack: list[str]) -> str:
    """The stage of a sample: the innermost frame that belongs to one (a UUID check called by the schema's own
    validator counts as decoding)."""
    for frame in reversed(stack):
        for name, marks in CATEGORIES:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def profile_report(bootstrap: str, say: Say) -> None:
    """py-spy samples one more whole replay: the share of samples per stage (by the innermost Python frame)."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "replay.txt"
        command = ["py-spy", "record", "--rate", "200", "--format", "raw", "--output", str(raw), "--"]
        spy = Path(sys.executable).with_name("py-spy")
        done = subprocess.run(
            [str(spy), *command[1:], *replay_command(bootstrap), "--no-progress"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not raw.exists():
            say(f"\npy-spy could not profile the replay ({done.returncode}): {done.stderr.strip()[-500:]}")
            return
        leaves: Counter[str] = Counter()
        spent: Counter[str] = Counter()
        for line in raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            frames = stack.split(";")
            leaves[frames[-1]] += int(samples)
            spent[_category(frames)] += int(samples)
    total = sum(leaves.values())
    say(f"\npy-spy of one whole replay ({total:,} samples at 200 Hz of its Python thread; librdkafka's own fetch")
    say("threads are not Python and run beside it):")
    for name, share in spent.most_common():
        say(f"  {share / total:6.1%}  {name}")
    say("  innermost frames with the most samples:")
    for leaf, share in leaves.most_common(10):
        say(f"    {share / total:6.1%}  {leaf[:110]}")
