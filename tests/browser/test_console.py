"""The whole pipeline driven from the console in a real browser, as a user would.

From a fresh state: Overview → Start demo pipeline, and within 120 s the diagram shows the producer,
the topic and the Spark job healthy with their figures; the Producer page's events/s, the Consumer
page's windows, hashtags and history charts, the Topics page and its message browser. Then the
broker is killed: the diagram shows Kafka failing, the sidebar an alert, the webhook receiver gets
its message; the fix under the diagram restarts the broker and both clear. Stop pipeline stops
both jobs. Every page is saved as test-artifacts/screenshots/<name>.png; the figures seen are printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from backend.kafka import local_broker
from backend.settings import PROJECT_ROOT
from tests.browser.conftest import SCREENSHOTS, VIEWPORT, Console
from tests.console_server import DATAFRAME_ROWS

pytestmark = pytest.mark.browser

PAGE_MS = 30_000  # a page or a rerun to show
BROKER_START_MS = 120_000
JOB_START_MS = 30_000  # Start waits a few seconds to catch a job that exits at once
RATE_MS = 60_000
# Spark's start and its first micro-batch take 40-100 s on two cores; more while other jobs run.
SPARK_CHART_MS = 300_000
STOP_MS = 120_000  # the Spark job finishes its micro-batch first
DEMO_HEALTHY_MS = 120_000  # the promise: from the click to a healthy diagram
ALERT_MS = 15_000  # from the broker's death to the diagram and the sidebar saying so

# The Overview's diagram as the browser drew it: {node: {"fill": colour, "text": label}}.
DIAGRAM = """() => {
  const nodes = {};
  for (const g of document.querySelectorAll('[data-testid="stGraphVizChart"] svg g.node')) {
    const title = g.querySelector('title');
    const shape = g.querySelector('path, polygon');
    if (!title || !shape) continue;
    const text = Array.from(g.querySelectorAll('text'), (t) => t.textContent.trim()).join(' | ');
    nodes[title.textContent.trim()] = {fill: shape.getAttribute('fill'), text: text};
  }
  return Object.keys(nodes).length ? nodes : null;
}"""
HEALTHY_FILL = "#d8f0dc"
FAILING_FILL = "#fde0dc"
STOPPED_FILL = "#eceff1"
# Producer, topic and Spark job healthy, each with a figure above 0.
DEMO_HEALTHY = (
    "([healthy]) => { const d = (" + DIAGRAM + ")(); if (!d) return null;"
    " const ok = (key, pattern) => d[key] && d[key].fill === healthy && d[key].text.includes('(healthy)')"
    "   && (() => { const m = d[key].text.match(pattern); return m && parseFloat(m[1].replace(/,/g, '')) > 0; })();"
    " return ok('producer', /([\\d,.]+) events\\/s/) && ok('kafka', /([\\d,]+) messages/)"
    "   && ok('consumer', /([\\d,.]+) rows\\/s/) ? d : null; }"
)
# The sidebar's alerts: the texts of the error boxes in the sidebar.
SIDEBAR_ALERTS = """() => Array.from(
  document.querySelectorAll('[data-testid="stSidebarUserContent"] [data-testid="stAlertContentError"]'),
  (box) => box.textContent.trim())"""

# The number shown by the st.metric labelled `label`, once it is above 0 (else null).
METRIC_ABOVE_ZERO = """(label) => {
  for (const metric of document.querySelectorAll('[data-testid="stMetric"]')) {
    const name = metric.querySelector('[data-testid="stMetricLabel"]');
    const value = metric.querySelector('[data-testid="stMetricValue"]');
    if (name && value && name.textContent.trim() === label) {
      const number = parseFloat(value.textContent.replace(/,/g, ''));
      return number > 0 ? number : null;
    }
  }
  return null;
}"""

# The plotly chart titled `title`, once drawn with bars (or, when `needBars` is false, lines):
# its bars, line traces, and the first trace's points as plotly holds them (label: value).
PLOTLY_CHART = """([title, needBars]) => {
  for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    const heading = chart.querySelector('.gtitle');
    if (!heading || heading.textContent.trim() !== title) continue;
    const bars = chart.querySelectorAll('.trace.bars .point').length;
    const lines = chart.querySelectorAll('.trace.scatter').length;
    if (needBars ? bars === 0 : bars + lines === 0) return null;
    const plot = chart.querySelector('.js-plotly-plot');
    const trace = plot && plot._fullData && plot._fullData[0];
    const points = trace ? Array.from(trace.y || [], (label, i) => [String(label), Number(trace.x[i])]) : [];
    return {bars: bars, lines: lines, points: points};
  }
  return null;
}"""

# The sidebar's live state: {"Kafka broker": [kind, line], "Producer": [...], "Spark job": [...]}.
SIDEBAR_STATE = """() => {
  const state = {};
  let label = null;
  const content = document.querySelector('[data-testid="stSidebarUserContent"]');
  if (!content) return state;
  for (const element of content.querySelectorAll('[data-testid="stElementContainer"]')) {
    const alert = element.querySelector('[data-testid="stAlert"]');
    if (alert && label) {
      const box = alert.querySelector('[data-testid^="stAlertContent"]');
      const kind = box ? box.getAttribute('data-testid').replace('stAlertContent', '').toLowerCase() : '?';
      state[label] = [kind, alert.querySelector('[data-testid="stMarkdownContainer"]').textContent.trim()];
      label = null;
    } else if (!alert) {
      label = element.textContent.trim();
    }
  }
  return state;
}"""

# Both jobs shown as not running: the sidebar's lines are no longer green and name no pid.
SIDEBAR_JOBS_STOPPED = (
    "() => { const s = (" + SIDEBAR_STATE + ")(); const jobs = [s['Producer'], s['Spark job']];"
    " return jobs.every((j) => j && j[0] !== 'success' && !j[1].includes('pid')) ? s : null; }"
)


def wait_for(page: Page, script: str, arg: Any = None, timeout: float = PAGE_MS) -> Any:
    """Poll `script` in the page until it returns a truthy value; return that value."""
    return page.wait_for_function(script, arg=arg, timeout=timeout, polling=250).json_value()


def open_page(page: Page, link: str, heading: str | None = None) -> None:
    """Click the navigation link at the top and wait for the page's title, then check it shows no exception."""
    # The link's text is "<icon name><title>" (e.g. "buildSetup"): matching the end picks the page.
    page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(rf"{link}$")).click()
    expect(page.get_by_role("heading", name=heading or link, level=1)).to_be_visible(timeout=PAGE_MS)
    no_exception(page)


def no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def screenshot(page: Page, name: str) -> str:
    """The whole page as test-artifacts/screenshots/<name>.png.

    Streamlit scrolls inside its main section, not the document: the viewport grows to the
    section's height for the shot, so a full-page screenshot holds all of it.
    """
    height = page.evaluate(
        "() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
        " return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight); }"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height))})
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    print(f"          screenshot {path.relative_to(PROJECT_ROOT)}")
    return str(path)


@pytest.mark.timeout(900)
def test_pipeline_from_the_browser(browser_page: Page, console: Console) -> None:
    page = browser_page
    began = time.monotonic()
    bootstrap = re.escape(console.broker.bootstrap)

    def seen(what: str) -> None:
        print(f"[{time.monotonic() - began:5.1f} s] {what}")

    page.goto(console.url)
    print()
    # The console's navigation is at the top; Streamlit's own listing of pages/ is never shown.
    expect(page.get_by_role("heading", name="Tweet stream console", level=1)).to_be_visible(timeout=PAGE_MS)
    expect(page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(r"Setup$"))).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)

    # -- Overview, fresh: everything stopped, nothing alarming; one click starts the demo pipeline.
    fresh = wait_for(page, DIAGRAM)
    assert fresh["kafka"]["fill"] == STOPPED_FILL and "(stopped)" in fresh["producer"]["text"], fresh
    assert page.evaluate(SIDEBAR_ALERTS) == []
    clicked = time.monotonic()
    page.get_by_role("button", name="Start demo pipeline").click()
    expect(page.get_by_text(re.compile(r"^Demo pipeline running: synthetic tweets at 20 events/s"))).to_be_visible(
        timeout=BROKER_START_MS
    )
    seen(f"demo pipeline started ({time.monotonic() - clicked:.1f} s after the click)")
    remaining_ms = max(1_000, DEMO_HEALTHY_MS - (time.monotonic() - clicked) * 1000)
    healthy = wait_for(page, DEMO_HEALTHY, [HEALTHY_FILL], remaining_ms)
    seen(
        f"diagram healthy {time.monotonic() - clicked:.1f} s after the click: "
        + "; ".join(f"{key}: {healthy[key]['text']}" for key in ("producer", "kafka", "consumer"))
    )
    no_exception(page)
    screenshot(page, "overview-running")

    # -- Producer: synthetic tweets at the demo's 20 events/s.
    open_page(page, "Producer")
    rate = wait_for(page, METRIC_ABOVE_ZERO, "Now (events/s)", RATE_MS)
    assert rate > 0
    seen(f"producer: Now (events/s) = {rate:g}")
    wait_for(page, PLOTLY_CHART, ["Acknowledged events per second, last 15 minutes", False])
    no_exception(page)
    screenshot(page, "producer")

    # -- Consumer: the windows, the hashtags, and the history of at least 5 batches.
    open_page(page, "Consumer")
    chart = wait_for(page, PLOTLY_CHART, ["Top 20 hashtags", True], SPARK_CHART_MS)
    assert 0 < chart["bars"] <= 20
    top = ", ".join(f"#{tag} {count:g}" for tag, count in chart["points"][:5])
    seen(f"consumer: Top 20 hashtags shows {chart['bars']} bars; the first 5 (tweets): {top}")
    windows = wait_for(page, PLOTLY_CHART, ["Tweets per window", True])
    tweets = [float(label) for label, _ in windows["points"]]  # the first trace's heights: tweets per window
    assert windows["bars"] >= 1 and max(tweets) > 0, windows
    seen(f"consumer: Tweets per window shows {windows['bars']} bars, tweets per window {tweets}")
    batches = wait_for(
        page,
        "() => { const c = Array.from(document.querySelectorAll('[data-testid=\"stCaptionContainer\"]'),"
        " (e) => e.textContent.match(/^([\\d,]+) batches shown/)).find((m) => m);"
        " return c && parseInt(c[1].replace(/,/g, '')) >= 5 ? parseInt(c[1].replace(/,/g, '')) : null; }",
        timeout=SPARK_CHART_MS,
    )
    for title in ("Input vs processed rows per second", "Batch duration", "Lag per partition (records)"):
        history = wait_for(page, PLOTLY_CHART, [title, title == "Batch duration"])
        assert history["lines"] + history["bars"] > 0, (title, history)
    seen(f"consumer: history of {batches} batches charted")
    batch_rows = wait_for(page, METRIC_ABOVE_ZERO, "Last batch (rows)")
    seen(f"consumer: Last batch (rows) = {batch_rows:g}")
    no_exception(page)
    screenshot(page, "consumer")

    # -- Topics: the topic with its messages/s, then the latest 5 messages in the browser.
    open_page(page, "Topics")
    rows = wait_for(
        page,
        f"() => {{ const rows = ({DATAFRAME_ROWS})('topic');"
        " const row = rows && rows.find((r) => r.topic === 'tweets');"
        " return row && parseFloat(row['messages/s (now)']) > 0 ? rows : null; }",
    )
    topic_row = next(row for row in rows if row["topic"] == "tweets")
    seen(
        f"topics: tweets has {topic_row['partitions']} partitions, {topic_row['messages']} messages, "
        f"{topic_row['messages/s (now)']} messages/s"
    )
    assert topic_row["partitions"] == "4"
    assert int(topic_row["messages"].replace(",", "")) > 0
    wait_for(page, PLOTLY_CHART, ["Messages per second, last 15 minutes", False])

    page.get_by_label("Messages (at most").fill("5")
    page.get_by_role("button", name="Read messages").click()
    expect(page.get_by_text("5 messages read")).to_be_visible(timeout=PAGE_MS)
    found = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"partition \d+ · offset \d+ · "))
    expect(found).to_have_count(5)
    first = found.first
    first.locator("summary").click()
    code = first.get_by_test_id("stCode")
    expect(code).to_be_visible()
    value = json.loads(code.text_content())
    assert value["data"]["id"] and value["data"]["text"]
    seen(f"topics: latest message {value['data']['id']}: {value['data']['text'][:60]!r}")
    no_exception(page)
    screenshot(page, "topics")

    # -- The broker dies: within 15 s the diagram shows Kafka failing and the sidebar an alert; the webhook hears.
    open_page(page, "Overview", "Tweet stream console")
    expect(page.get_by_text(re.compile(rf"^Running at {bootstrap} \(pid \d+\)"))).to_be_visible()
    broker_pid = local_broker.status(console.broker).pid
    assert broker_pid is not None
    os.kill(broker_pid, signal.SIGKILL)
    killed = time.monotonic()
    failing = wait_for(
        page,
        "([failing]) => { const d = (" + DIAGRAM + ")(); return d && d.kafka.fill === failing ? d.kafka : null; }",
        [FAILING_FILL],
        ALERT_MS,
    )
    alerts = wait_for(
        page,
        "() => { const a = (" + SIDEBAR_ALERTS + ")(); return a.some((t) => t.includes('Kafka does not answer'))"
        " ? a : null; }",
        timeout=max(1_000, ALERT_MS - (time.monotonic() - killed) * 1000),
    )
    seen(f"broker killed: diagram Kafka {failing['text']!r}; sidebar alert {alerts[0]!r}")
    assert re.search(r"since \d\d:\d\d:\d\d UTC", alerts[0]), alerts
    screenshot(page, "overview-alert")
    deadline = time.monotonic() + 30  # the webhook sends from its own thread, retrying
    while not any("Kafka does not answer" in text for text in console.webhook) and time.monotonic() < deadline:
        time.sleep(0.25)
    started = [text for text in console.webhook if "Kafka does not answer" in text]
    assert started and started[0].startswith(":rotating_light:"), console.webhook
    seen(f"webhook received: {started[0][:100]!r}")

    # -- The fix under the diagram restarts the broker: the diagram's Kafka and the alert clear.
    page.get_by_role("button", name="Start broker").click()
    wait_for(
        page,
        "([healthy]) => { const d = ("
        + DIAGRAM
        + ")(); return d && d.kafka.fill !== '"
        + FAILING_FILL
        + "' && !("
        + SIDEBAR_ALERTS
        + ")().some((t) => t.includes('Kafka does not answer')) ? d : null; }",
        [HEALTHY_FILL],
        BROKER_START_MS,
    )
    deadline = time.monotonic() + 30
    while not any(text.startswith(":white_check_mark:") for text in console.webhook) and time.monotonic() < deadline:
        time.sleep(0.25)
    cleared = [text for text in console.webhook if text.startswith(":white_check_mark:")]
    assert any("Kafka does not answer" in text for text in cleared), console.webhook
    seen(f"broker restarted: Kafka clear on the diagram and in the sidebar; webhook received {cleared[0][:60]!r}")
    no_exception(page)

    # -- Stop pipeline stops both jobs; the sidebar then shows neither running.
    page.get_by_role("button", name="Stop pipeline").click()
    expect(page.get_by_text(re.compile(r"^Pipeline stopped: Producer terminated after [\d.]+ s"))).to_be_visible(
        timeout=STOP_MS
    )
    no_exception(page)
    state = wait_for(page, SIDEBAR_JOBS_STOPPED)
    seen(f"sidebar: producer {state['Producer'][1]!r}, Spark job {state['Spark job'][1]!r}")
    assert state["Kafka broker"][0] == "success"
