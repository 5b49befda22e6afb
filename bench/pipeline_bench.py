"""`make bench-pipeline`: orders through the four services against a bare aiokafka relay chain, in one run.

Starts an isolated broker (infra/kafka/kafka.sh, own run directory and ports, principals and ACLs applied,
stopped and purged at the end whatever happens), then:
  1. the four services as processes, each logged in as its own principal; policies clearing BUYERS buyers and
     one batch large enough for every order; ORDERS submissions published as fast as one producer can, timed from
     the first send to the timestamp of the last order's first ChipsAllocated: orders/s through the services;
  2. the peer: a chain of relays with the same hop count from submission to allocation (intake's router and core,
     approval's, allocation's: six consumer-to-producer hops, two per process, three processes), each a bare
     aiokafka consumer copying the bytes on with `acks=all` and auto-commit, no decoding; --relay-records
     records of an order's size (20,000: at a few thousand a second, fewer were over in a second and their rate
     was mostly the chain's start), timed the same way: records/s;
  3. latency at half of the measured rate (or --latency-rate): orders paced at that rate; per order, the seconds
     from its send to the timestamps of its OrderApproved, of that approval's copy in allocation's inbox and of its
     first ChipsAllocated (p50 / p99 / max: each record's timestamp is set by the producer that wrote it, on this
     machine's clock, so the bench's own readers add nothing), so that the wait for approval's markers (business
     time: allocation admits an approval once every approval partition's marker after the next clock tick has
     passed it) shows apart from the services' own work;
  4. the CPU every process uses in ten seconds with no orders: the fixed cost of business time (ticks, markers).
Both sides run on a warmed broker (a relay round first, then --warm-orders orders through the services, neither
timed: a broker just started spends much of its CPU in its JIT compilers), and each phase prints the CPU seconds
every process used (/proc/<pid>/stat), per order or record: what the two cores went to.
Figures, not a timed test.

    python -m bench.pipeline_bench [--orders N] [--warm-orders W] [--latency-orders L] [--relay-records R]
                                   [--buyers B] [--latency-rate R] [--clock-interval-s S]
                                   [--port P --controller-port Q]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from bench.relay import HOPS, relay_topic
from bench.replay_bench import REPO, broker
from schemas import builders as s  # the e2e tests' builders of cleared buyers and orders: one market, not two
from schemas.codec import encode
from schemas.intake import SubmitOrder
from schemas.topics import BY_NAME
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import admin_client
from services.ops.publish import envelope_for, publish
from services.ops.topics import ensure_topics

DECIDERS = ("intake", "approval", "allocation", "fulfilment")
SUBMISSIONS = "h200.intake.commands"
LEDGER = "h200.allocations"
APPROVALS = "h200.approvals"
ALLOCATION_INBOX = "h200.allocation.inbox"


RUNNING: list[subprocess.Popen[bytes]] = []
"""The processes started for the current run (checked while waiting: a process that exited ends the bench)."""
NAMES: dict[int, str] = {}


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far (/proc/<pid>/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


BENCH = "bench (this process)"


class CpuShare:
    """CPU used by each process of a phase between `start` and `stop`, and the phase's wall seconds: where the
    cores went."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid
        self.named: dict[str, int] = {}
        self.began: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.seconds = 0.0

    def _now(self) -> dict[str, float]:
        return {**{name: cpu_seconds(pid) for name, pid in self.named.items()}, BENCH: sum(os.times()[:2])}

    def start(self, processes: dict[str, int]) -> None:
        self.named = {"broker": self.broker_pid, **processes}
        self.began, self.seconds = self._now(), time.perf_counter()

    def stop(self) -> None:
        self.used = {name: used - self.began[name] for name, used in self._now().items()}
        self.seconds = time.perf_counter() - self.seconds

    def lines(self, count: int, unit: str) -> list[str]:
        total = sum(self.used.values())
        cores = os.cpu_count() or 1
        rows = [f"    {'process':<24}{'CPU s':>8}{f'ms a {unit}':>14}{f'share of {cores} cores':>18}"]
        for name, used in sorted(self.used.items(), key=lambda item: -item[1]):
            share = used / (self.seconds * cores)
            rows.append(f"    {name:<24}{used:>8.1f}{used * 1000 / count:>14.2f}{share:>18.0%}")
        rows.append(f"    {'all':<24}{total:>8.1f}{total * 1000 / count:>14.2f}")
        return rows


def broker_pid(run_dir: Path) -> int:
    return int((run_dir / "kafka.pid").read_text().split()[0])


def named_pids() -> dict[str, int]:
    """The processes of the current run by the names they were started under."""
    return {NAMES[p.pid]: p.pid for p in RUNNING}


def as_principal(name: str) -> dict[str, str]:
    return {**os.environ, "H200_KAFKA_USERNAME": name, "PYTHONUNBUFFERED": "1"}


@contextmanager
def processes(commands: list[tuple[str, list[str], dict[str, str]]], log_dir: Path) -> Iterator[None]:
    log_dir.mkdir(parents=True, exist_ok=True)
    started = RUNNING
    for name, command, env in commands:
        with open(log_dir / f"{name}.log", "ab") as out:
            started.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            NAMES[started[-1].pid] = name
    try:
        yield
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        started.clear()


class Arrivals(threading.Thread):
    """Reads a topic from its end as it is now, noting the timestamp of the first record of each key of interest."""

    def __init__(self, bootstrap: str, topic: str, key_of: object) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(
            topic,
            **kafka_python_options(),
            bootstrap_servers=bootstrap,
            auto_offset_reset="latest",
            fetch_max_wait_ms=100,  # latencies are read from the records' timestamps: a reader may wait for more
        )
        self.key_of = key_of
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.consumer.assignment():
            self.consumer.poll(timeout_ms=100)
        for partition in self.consumer.assignment():
            self.consumer.position(partition)  # resolve "latest" now: nothing written after `ready` is missed
        self.ready.set()
        while not self.stop.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                for record in records:
                    key = self.key_of(record.value)  # type: ignore[operator]
                    if key is not None:
                        # The record's own timestamp (its producer's clock, this machine's): when this reader got
                        # to it would add the reader's own delay, and one Python process reads three topics here.
                        self.seen.setdefault(key, record.timestamp / 1000)
        self.consumer.close()

    def wait_for(self, keys: set[str], timeout_s: float, what: str) -> float:
        deadline, shown = time.perf_counter() + timeout_s, time.perf_counter()
        while not keys <= self.seen.keys():
            if exited := [p.args for p in RUNNING if p.poll() is not None]:
                raise SystemExit(f"{what}: a process exited: {exited} (see the logs under --run-dir)")
            if time.perf_counter() > deadline:
                raise SystemExit(f"{what}: {len(keys - self.seen.keys()):,} of {len(keys):,} never arrived")
            if time.perf_counter() - shown > 5:
                say(f"  {what}: {len(keys & self.seen.keys()):,} of {len(keys):,}")
                shown = time.perf_counter()
            time.sleep(0.01)
        return max(self.seen[key] for key in keys)


def allocated_ref(value: bytes) -> str | None:
    """The upstream order's key of a ChipsAllocated line (the order id), None for any other record."""
    if b'"ChipsAllocated"' not in value:
        return None  # not parsed: the bench's own CPU is taken from the services it times
    envelope = json.loads(value)
    if envelope.get("type") != "ChipsAllocated":
        return None
    return str(envelope["payload"]["order_id"])


def approved_ref(value: bytes) -> str | None:
    """The order id of an OrderApproved, None for any other record (approval's markers, nine in ten of the records
    of allocation's inbox at 0.1 s ticks, are not parsed)."""
    if b'"OrderApproved"' not in value:
        return None
    envelope = json.loads(value)
    if envelope.get("type") != "OrderApproved":
        return None
    return str(envelope["payload"]["order_id"])


IDLE_SECONDS = 10
"""How long the services' CPU is measured with no orders: the fixed cost of business time (ticks and markers)."""


def services_run(
    bootstrap: str, args: argparse.Namespace, cpu: CpuShare, paced_cpu: CpuShare, idle_cpu: CpuShare
) -> tuple[float, Latencies]:
    total = 30 + args.warm_orders + args.orders + args.latency_orders
    market = s.Market("bp", buyers=args.buyers, quota=10 * (total // args.buyers + 2), lot=10, orders_per_buyer=1)
    env_extra = {"H200_BOOTSTRAP_SERVERS": bootstrap}
    commands = [
        (
            name,
            [sys.executable, "-m", f"services.{name}", "worker", "-l", "warn", "--without-web"],
            {**as_principal(name), **env_extra, f"H200_{name.upper()}_DATADIR": str(args.run_dir / "workers")},
        )
        for name in DECIDERS
    ]
    # Business time moves as in production: approval decides on what is in force at the clock's last tick.
    commands.append(("clock", [sys.executable, "-m", "services.clock"], {**as_principal("clock"), **env_extra}))
    with processes(commands, args.run_dir / "logs"):
        supply = s.batch("BP-B01", 20 * total, pool=market.pool)
        publish(bootstrap, [s.submission_window(), *market.policies(), supply], "ops")
        arrivals = Arrivals(bootstrap, LEDGER, allocated_ref)
        arrivals.start()
        arrivals.ready.wait(60)
        warm_up(bootstrap, market, arrivals)
        if args.warm_orders:
            # Not timed: the broker's JIT compilers are still at work on the paths these clients take (C2 threads
            # were 44% of the broker's CPU during a timed burst right after one order), and so is every cache.
            warm = orders(market, 3, args.warm_orders)
            send(bootstrap, warm)
            arrivals.wait_for({o[0] for o in warm}, 600, f"{args.warm_orders:,} orders warming up")
            say(f"  warmed up: {args.warm_orders:,} orders went through (not timed)")
        batch = orders(market, 1, args.orders)
        cpu.start(named_pids())
        began = time.time()
        send(bootstrap, batch)
        done = arrivals.wait_for({o[0] for o in batch}, 600, f"{args.orders:,} orders")
        cpu.stop()
        rate = args.orders / (done - began)
        settle(named_pids())
        idle_cpu.start(named_pids())
        time.sleep(IDLE_SECONDS)
        idle_cpu.stop()
        # Read only for the paced orders: decoding every approval of the burst would take CPU from the services.
        approvals = Arrivals(bootstrap, APPROVALS, approved_ref)
        copies = Arrivals(bootstrap, ALLOCATION_INBOX, approved_ref)  # allocation's router copied the approval
        for reader in (approvals, copies):
            reader.start()
            reader.ready.wait(60)
        paced = orders(market, 2, args.latency_orders)
        say(f"  pacing {args.latency_orders:,} orders at {args.latency_rate or rate / 2:,.1f} a second")
        paced_cpu.start(named_pids())
        sent = send(bootstrap, paced, rate=args.latency_rate or rate / 2)
        arrivals.wait_for(set(sent), 300, "paced orders")
        paced_cpu.stop()
        approvals.wait_for(set(sent), 60, "paced orders' approvals")
        copies.wait_for(set(sent), 60, "paced orders' approvals copied into allocation's inbox")
        latencies = Latencies(
            allocated=sorted(arrivals.seen[key] - at for key, at in sent.items()),
            approved=sorted(approvals.seen[key] - at for key, at in sent.items()),
            admitted=sorted(arrivals.seen[key] - approvals.seen[key] for key in sent),
            copied=sorted(copies.seen[key] - approvals.seen[key] for key in sent),
            decided=sorted(arrivals.seen[key] - copies.seen[key] for key in sent),
        )
        for reader in (arrivals, approvals, copies):
            reader.stop.set()
    return rate, latencies


@dataclass(frozen=True)
class Latencies:
    """Seconds per paced order, each list sorted: send to first ChipsAllocated, send to OrderApproved (intake and
    approval), and OrderApproved to first ChipsAllocated (allocation's wait for approval's markers and its own work)."""

    allocated: list[float]
    approved: list[float]
    admitted: list[float]
    copied: list[float]
    """OrderApproved to its copy in h200.allocation.inbox (allocation's router)."""
    decided: list[float]
    """That copy to the first ChipsAllocated (allocation's decider: the marker gate and its own work)."""

    def lines(self) -> list[str]:
        def row(what: str, values: list[float]) -> str:
            p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
            return f"    {what:<44}{p50:>10,.0f}{p99:>10,.0f}{values[-1] * 1000:>10,.0f}"

        return [
            f"    {'ms, per order':<44}{'p50':>10}{'p99':>10}{'max':>10}",
            row("submission to first allocation", self.allocated),
            row("  submission to OrderApproved", self.approved),
            row("  OrderApproved to first allocation", self.admitted),
            row("    OrderApproved to its copy (the router)", self.copied),
            row("    copy to first allocation (the decider)", self.decided),
        ]


QUIET_SECONDS = 5


def settle(processes: dict[str, int], idle_share: float = 0.2, timeout_s: float = 120) -> None:
    """Until every process uses under `idle_share` of a core for QUIET_SECONDS seconds in a row: the burst's later
    work (fulfilment, the events after each first allocation) is done, so that the paced orders do not queue behind
    it. (An idle service uses under 10% of a core at 1 s ticks, allocation ~17% at 0.1 s ticks; before agents slept
    between records, faust's take_events kept allocation at 48% idle and this wait timed out at 0.1 s ticks.)"""
    deadline = time.perf_counter() + timeout_s
    busy: dict[str, float] = {}
    quiet = 0
    while time.perf_counter() < deadline:
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        time.sleep(1)
        busy = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
        # Several quiet seconds in a row: one can be a lull between waves of the burst's tail (fulfilment's steps,
        # then allocation's answers to them).
        quiet = quiet + 1 if max(busy.values()) < idle_share else 0
        if quiet >= QUIET_SECONDS:
            return
    busiest = ", ".join(f"{name} {share:.0%}" for name, share in sorted(busy.items(), key=lambda kv: -kv[1])[:3])
    say(f"  still busy after {timeout_s:.0f} s (a core's share, last second: {busiest}); timing the paced orders")


def warm_up(bootstrap: str, market: s.Market, arrivals: Arrivals) -> None:
    """Until an order goes all the way through: the groups have joined and every policy is in force. (An order
    that reaches intake before the submission window does is rightly refused, so one order is sent at a time.)"""
    for attempt in range(30):
        probe = orders(market, 0, attempt + 1)[-1:]
        send(bootstrap, probe)
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            if probe[0][0] in arrivals.seen:
                say(f"  warmed up: order {attempt + 1} went through")
                return
            time.sleep(0.05)
    raise SystemExit("warming up: no order was allocated in 300 s; see the logs under --run-dir")


def orders(market: s.Market, round_: int, count: int) -> list[tuple[str, bytes]]:
    """(order id, encoded SubmitOrder envelope) of `count` new orders, round robin over the market's buyers."""
    made = []
    for n in range(count):
        buyer = market.buyer_ids[n % market.buyers]
        order: SubmitOrder = s.submit(buyer, f"bp-{round_}-{n}", market.lot, pool=market.pool)
        envelope = envelope_for(order, "upstream")
        made.append((str(s.order_id(buyer, order.upstream_ref)), encode(envelope)))
    # keyed by buyer, as an upstream system does (intake re-keys anything else, and says so)
    return made


def send(bootstrap: str, batch: list[tuple[str, bytes]], rate: float = 0.0) -> dict[str, float]:
    """Publish the batch as upstream (as fast as possible, or `rate` a second); the send time of each."""
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    sent: dict[str, float] = {}
    began = time.perf_counter()
    for n, (key, value) in enumerate(batch):
        if rate:
            time.sleep(max(0.0, began + n / rate - time.perf_counter()))
        sent[key] = time.time()  # the clock of the records' timestamps, which the arrivals are read by
        producer.send(SUBMISSIONS, key=json.loads(value)["key"].encode(), value=value)
    producer.flush()
    producer.close()
    return sent


def relay_topics(bootstrap: str) -> None:
    with admin_client(bootstrap) as admin:
        from kafka.admin import NewTopic

        partitions = BY_NAME[SUBMISSIONS].partitions
        admin.create_topics([NewTopic(relay_topic(hop), partitions, 1) for hop in range(HOPS + 1)])


def relay_run(bootstrap: str, args: argparse.Namespace, sample: bytes, count: int, cpu: CpuShare) -> float:
    commands = [
        (
            f"relay-{pair}",
            [sys.executable, "-m", "bench.relay", bootstrap, str(pair * 2), str(pair * 2 + 1)],
            {**as_principal("admin")},
        )
        for pair in range(HOPS // 2)
    ]
    with processes(commands, args.run_dir / "logs"):
        arrivals = Arrivals(bootstrap, relay_topic(HOPS), lambda value: value[-12:].decode())
        arrivals.start()
        arrivals.ready.wait(60)
        warm = [(f"w{n:011d}", sample + f"w{n:011d}".encode()) for n in range(50)]
        send_raw(bootstrap, warm)
        arrivals.wait_for({k for k, _ in warm}, 180, "relay warming up")
        # Each round reads from the end as it is, so the same keys in a later round are told apart.
        batch = [(f"r{n:011d}", sample + f"r{n:011d}".encode()) for n in range(count)]
        cpu.start(named_pids())
        began = time.time()  # the clock of the records' timestamps (Arrivals)
        send_raw(bootstrap, batch)
        done = arrivals.wait_for({k for k, _ in batch}, 600, "relay")
        cpu.stop()
        arrivals.stop.set()
    return float(count / (done - began))


def send_raw(bootstrap: str, batch: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    for key, value in batch:
        producer.send(relay_topic(0), key=key.encode(), value=value)
    producer.flush()
    producer.close()


def clock_interval_s() -> float:
    """The clock's interval as the clock process reads it (its settings; H200_CLOCK_INTERVAL_S)."""
    from services.clock.settings import ClockSettings

    return float(ClockSettings().interval_s)


def percentile(values: list[float], share: float) -> float:
    return float(values[min(len(values) - 1, int(share * len(values)))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5_000, help="orders (and relay records) timed (5,000)")
    parser.add_argument(
        "--relay-records", type=int, default=20_000, help="records timed through the relay chain (20,000)"
    )
    parser.add_argument("--warm-orders", type=int, default=2_000, help="orders sent first, not timed (2,000)")
    parser.add_argument("--latency-orders", type=int, default=1_000, help="orders paced at half the rate (1,000)")
    parser.add_argument("--latency-rate", type=float, default=0, help="orders/s of the paced orders (half the rate)")
    parser.add_argument("--buyers", type=int, default=50, help="buyers the orders are spread over (50)")
    parser.add_argument(
        "--clock-interval-s", type=float, default=None, help="seconds between the clock's ticks (its default: 1)"
    )
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run/bench/pipeline", help="broker and logs")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_KAFKA_PORT", "0")), help="0: any")
    parser.add_argument("--controller-port", type=int, default=0, help="0: any")
    args = parser.parse_args(argv)
    if args.clock_interval_s is not None:
        os.environ["H200_CLOCK_INTERVAL_S"] = str(args.clock_interval_s)  # the clock process reads it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` that stops the broker
    os.environ.setdefault("KAFKA_PYTHON", sys.executable)  # kafka.sh gives every principal its ACLs
    os.environ["H200_KAFKA_USERNAME"] = "admin"  # the bench itself: topics, relays, reading back
    say(f"bench-pipeline: {args.orders:,} orders; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    with broker(args.run_dir / "kafka", args.port, args.controller_port) as bootstrap:
        with admin_client(bootstrap) as admin:
            ensure_topics(admin)
        os.environ["H200_KAFKA_USERNAME"] = "upstream"
        sample = orders(s.Market("bp", 1, 10, 10, orders_per_buyer=1), 9, 1)[0][1]
        os.environ["H200_KAFKA_USERNAME"] = "admin"
        # A broker just started runs its JIT compilers beside the first load: the relay read 1,784 records/s first
        # and ~4,000 after the services in one run. Both sides are timed on a broker warmed by a relay round first.
        relay_topics(bootstrap)
        pid = broker_pid(args.run_dir / "kafka")
        warm_rate = relay_run(bootstrap, args, sample, args.orders, CpuShare(pid))
        say(f"  broker warmed up by a relay round: {warm_rate:,.0f} records/s (not reported below)")
        services_cpu, relay_cpu, paced_cpu, idle_cpu = CpuShare(pid), CpuShare(pid), CpuShare(pid), CpuShare(pid)
        services_rate, latencies = services_run(bootstrap, args, services_cpu, paced_cpu, idle_cpu)
        relay_rate = relay_run(bootstrap, args, sample, args.relay_records, relay_cpu)
    say()
    say(f"{'':<44}{'per second':>12}")
    say(f"{'four services, submission to first allocation':<44}{services_rate:>12,.0f}")
    say(f"{'bare aiokafka relay chain, same 6 hops':<44}{relay_rate:>12,.0f}")
    say(f"{'ratio (target 0.5)':<44}{services_rate / relay_rate:>12.3f}")
    say(
        f"latency at {args.latency_rate or services_rate / 2:,.0f} orders/s"
        f"{'' if args.latency_rate else ' (half the rate)'}, {len(latencies.allocated):,} orders, "
        f"a clock tick every {clock_interval_s():g} s (target p99 100 ms):"
    )
    for line in latencies.lines():
        say(line)
    say(f"  CPU while they were paced ({paced_cpu.seconds:,.1f} s, sending to the last first allocation):")
    for line in paced_cpu.lines(args.latency_orders, "order"):
        say(line)
    say()
    say(f"where the CPU went while the {args.orders:,} orders went through the four services:")
    for line in services_cpu.lines(args.orders, "order"):
        say(line)
    say(f"and while {args.relay_records:,} records went through the relay chain:")
    for line in relay_cpu.lines(args.relay_records, "record"):
        say(line)
    say(f"and with no orders for {IDLE_SECONDS} s (the clock's ticks and approval's markers only):")
    for line in idle_cpu.lines(IDLE_SECONDS, "second"):
        say(line)
    say(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
