"""The ops console in headless Chromium (Debian's chromium and chromedriver, driven by selenium) against the real
API as a process, reading a real Redis and a real broker: the read models hold a small history the real cores
decided (tests/unit/builders_replay.story, projected as the projector projects), the dead-letter topic two records
a service refused. The test types the operator's token, then checks what the page shows, in the DOM and in
screenshots: the chart's points, ledger rows that change with the as-of slider, an order's trail, the dead letters,
a re-drive refused and one sent (and found on its topic)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from screenshots import read_png

from schemas.codec import ContractError, encode
from schemas.samples import sample_payloads
from schemas.topics import EVENT_TOPICS
from services.common.dead_letters import dead_letter
from services.common.records import Record
from services.ops.kafka_clients import producer
from services.ops.publish import envelope_for
from services.ops.supervisor import as_principal
from services.projector.projection import project
from services.projector.store import Pending, ReadModelStore
from services.replay.kafka_io import create_catalogue, read_topics

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from builders_replay import batch, story

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SHOTS = Path(".run/screenshots/console")
WAIT_S = 30.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _project(redis_url: str, namespace: str) -> None:
    """The story's events into the read models under `namespace`, each with its position, as the projector does."""
    world = story()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = ReadModelStore(client, namespace)
    # topic by topic in the order the flow runs (orders before their approvals), as a projector catching up would
    for (topic, partition), envelopes in sorted(world.partitions.items(), key=lambda i: (_flow(i[0][0]), i[0][1])):
        if topic in EVENT_TOPICS:
            store.apply(
                [Pending(topic, partition, n, str(e.id), project(namespace, e)) for n, e in enumerate(envelopes)]
            )
    client.close()


def _flow(topic: str) -> int:
    return EVENT_TOPICS.index(topic) if topic in EVENT_TOPICS else len(EVENT_TOPICS)


def _dead_letters(bootstrap: str, marker: int) -> None:
    """Two records intake refused: one not JSON, one a valid SubmitOrder whose processing failed then."""
    order = next(p for p in sample_payloads() if p.TYPE == "SubmitOrder")
    at = datetime.now(UTC)
    refused = [
        (b"{not json at all", ContractError("malformed_json", "not valid JSON: Expecting property name")),
        (encode(envelope_for(order, "upstream")), ContractError("processing_failed", "the store did not answer")),
    ]
    with producer(bootstrap) as client:
        for n, (value, error) in enumerate(refused):
            record = Record("h200.intake.commands", 0, marker + n, b"bytedance", value, ())
            letter = dead_letter("intake", record, error, at, 1_000_000)
            client.send(letter.topic, key=letter.key, value=letter.value, headers=letter.headers).get(timeout=30)


@pytest.fixture
def console(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The API on a free port, reading a namespace of its own; its auditor's and operator's tokens."""
    namespace, port, marker = f"console-{uuid.uuid4().hex[:8]}", _free_port(), int(time.time()) % 1_000_000
    create_catalogue(kafka_bootstrap)
    _project(redis_url, namespace)
    _dead_letters(kafka_bootstrap, marker)
    tokens = {role: secrets.token_hex(16) for role in ("auditor", "ops")}
    for role, token in tokens.items():
        (tmp_path / role).write_text(token + "\n")
    env = {
        **os.environ,
        "H200_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "H200_REDIS_URL": redis_url,
        "H200_NAMESPACE": namespace,
        "H200_API_PORT": str(port),
        "H200_API_SECRETS_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "api.log").open("w")
    api = subprocess.Popen(
        [sys.executable, "-m", "services.api"], env=as_principal(env, "api"), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until("the API is ready", lambda: _ready(url), lambda: (tmp_path / "api.log").read_text())
        yield {
            "url": url,
            "tokens": tokens,
            "marker": marker,
            "bootstrap": kafka_bootstrap,
            "redis_url": redis_url,
            "namespace": namespace,
            "log": lambda: (tmp_path / "api.log").read_text()[-3000:],
        }
    finally:
        api.terminate()
        api.wait(30)
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _until(what: str, condition: Callable[[], Any], say: Callable[[], str] = lambda: "") -> Any:
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            found = condition()
        except StaleElementReferenceException:
            # The page re-rendered between finding an element and reading it (the chart redraws on
            # every live event): that is "not yet", so look again rather than fail.
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT_S:.0f} s: {what}\n{say()}")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are missing: run infra/system-packages.sh (make install)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1300,2400")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_console_shows_supply_against_demand_the_ledger_as_of_the_slider_a_trail_and_dead_letters(
    console: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    SHOTS.mkdir(parents=True, exist_ok=True)
    css = lambda selector: browser.find_elements(By.CSS_SELECTOR, selector)  # noqa: E731
    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731

    browser.get(f"{console['url']}/console")
    browser.find_element(By.ID, "token").send_keys(console["tokens"]["ops"], Keys.ENTER)
    _until("signed in", lambda: "signed in as ops" in text("caller"), lambda: text("caller"))
    _until("the chart's points", lambda: len(css("#chart circle.point")) >= 6 * 5)
    _until("ledger rows", lambda: css("#ledger-rows tr.line"))
    _until(
        "live changes followed",
        lambda: "live: position" in text("live-status"),
        lambda: f"{text('live-status')} / {text('caller')} / {text('letters-summary')}\n{console['log']()}",
    )

    # The chart: a series per figure, its last manufactured point at the 900 chips of the two batches
    figures = {g.get_attribute("data-figure") for g in css("#chart g.figure")}
    assert figures == {"manufactured", "requested", "approved", "allocated", "shipped", "delivered"}
    last = css('#chart g[data-figure="manufactured"] circle.point')[-1]
    assert "manufactured 900" in last.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    browser.save_screenshot(str(SHOTS / "1-now.png"))
    shot = browser.find_element(By.ID, "chart").screenshot_as_png
    (SHOTS / "1-chart.png").write_bytes(shot)
    chart = read_png(shot)
    assert chart.shows("#2f6fba") and chart.shows("#2e9a5b"), "the manufactured and allocated lines are drawn"

    # The ledger now, then as of the slider's first moment: fewer lines, another label, the marker on the chart
    now_rows = len(css("#ledger-rows tr.line"))
    assert text("as-of-label") == "now" and "chips held" in text("ledger-summary")
    assert any("released" in row.get_attribute("class") for row in css("#ledger-rows tr.line"))
    slider = browser.find_element(By.ID, "as-of")
    moments = int(slider.get_attribute("max"))
    first_line = next(
        i for i in range(moments) if browser.execute_script("return state.points[arguments[0]].allocated", i) > 0
    )
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))", slider, first_line
    )
    _until("the ledger as of the slider", lambda: text("as-of-label") != "now" and len(css("#ledger-rows tr.line")))
    _until("fewer lines then", lambda: 0 < len(css("#ledger-rows tr.line")) < now_rows)
    assert text("as-of-label") in text("ledger-summary") or "as of" in text("ledger-summary")
    assert not any("released" in row.get_attribute("class") for row in css("#ledger-rows tr.line"))
    assert css("#chart line.marker")
    browser.save_screenshot(str(SHOTS / "2-as-of.png"))

    # An order's trail
    browser.find_element(By.ID, "trail-buyer").send_keys("alibaba")
    browser.find_element(By.ID, "trail-ref").send_keys("AL-1", Keys.ENTER)
    _until("the trail of alibaba/AL-1", lambda: len(css("#trail li")) >= 3, lambda: text("trail-summary"))
    trail = [item.text for item in css("#trail li")]
    assert "OrderPlaced" in trail[0] and any("lost" in entry for entry in trail), trail
    assert [entry.split()[0] for entry in trail] == sorted(entry.split()[0] for entry in trail)
    browser.save_screenshot(str(SHOTS / "3-trail.png"))

    # Dead letters: ours listed; the malformed one is refused, the valid one re-driven after a dry run
    rows = _until(
        "our dead letters",
        lambda: _our_letters(css("#dead-letters tr.letter"), console["marker"]),
        lambda: f"{text('letters-summary')}\n{console['log']()}",
    )
    malformed, valid = rows
    malformed.find_element(By.CSS_SELECTOR, "button.redrive").click()
    _until("the refusal", lambda: "redrive_refused" in text("redrive-result"), lambda: text("redrive-result"))
    assert "does not decode" in text("redrive-result")
    valid.find_element(By.CSS_SELECTOR, "button.redrive").click()
    _until("the dry run", lambda: "would send" in text("redrive-result"), lambda: text("redrive-result"))
    new_id = text("redrive-result").split(" as id ")[1].split()[0]
    browser.find_element(By.ID, "redrive-confirm").click()
    _until("sent", lambda: ": sent SubmitOrder" in text("redrive-result"), lambda: text("redrive-result"))
    browser.save_screenshot(str(SHOTS / "4-dead-letters.png"))
    commands = read_topics(console["bootstrap"], ["h200.intake.commands"])
    sent = [record for record in commands if new_id.encode() in (record.value or b"")]
    assert len(sent) == 1 and sent[0].partition == 0

    # A live change: a third batch projected while the page is open reaches the chart through /v1/events
    position = text("live-status")
    _project_batch(console["redis_url"], console["namespace"])
    _until(
        "the new batch on the chart",
        lambda: "manufactured 1,000" in _last_title(browser, "manufactured"),
        lambda: f"{text('live-status')} / {_last_title(browser, 'manufactured')}",
    )
    assert text("live-status") != position
    browser.save_screenshot(str(SHOTS / "5-live.png"))


def _last_title(browser: Any, figure: str) -> str:
    # One script reads the last title inside the page, so a redraw between finding and reading
    # cannot leave a stale element in our hands (CI saw that once).
    found = browser.execute_script(
        "const t = document.querySelectorAll(arguments[0]); return t.length ? t[t.length - 1].textContent : '';",
        f'#chart g[data-figure="{figure}"] circle.point title',
    )
    return str(found or "")


def _project_batch(redis_url: str, namespace: str) -> None:
    envelope = envelope_for(batch("B3", 100, minute=300), "ops")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = ReadModelStore(client, namespace)
    offset = store.positions().get(("h200.supply", 0), 0)
    store.apply([Pending("h200.supply", 0, offset, str(envelope.id), project(namespace, envelope))])
    client.close()


def _our_letters(rows: list[Any], marker: int) -> list[Any] | None:
    """The two rows of the dead letters this test wrote (the session's broker may hold others')."""
    ours = [row for row in rows if f"h200.intake.commands[0]@{marker}" in row.text or f"[0]@{marker + 1}" in row.text]
    return ours if len(ours) == 2 else None


def test_the_auditor_s_console_reads_everything_and_its_re_drive_is_refused(
    console: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
    browser.get(f"{console['url']}/console")
    browser.find_element(By.ID, "token").send_keys(console["tokens"]["auditor"], Keys.ENTER)
    _until("signed in", lambda: "signed in as auditor (reads only)" in text("caller"), lambda: text("caller"))
    rows = _until(
        "our dead letters",
        lambda: _our_letters(browser.find_elements(By.CSS_SELECTOR, "#dead-letters tr.letter"), console["marker"]),
        lambda: f"{text('letters-summary')}\n{console['log']()}",
    )
    rows[1].find_element(By.CSS_SELECTOR, "button.redrive").click()
    _until("the refusal", lambda: "403 ops_only" in text("redrive-result"), lambda: text("redrive-result"))
    assert browser.execute_script("return sessionStorage.getItem('h200.console.token')") == console["tokens"]["auditor"]
    assert browser.find_element(By.ID, "token").get_attribute("value") == ""
