"""The whole pipeline driven from the console in a real browser, as a user would.

Start the local broker on Setup, the producer (synthetic tweets, 100 events/s) and see
events/s above 0, the Spark job and see the hashtags chart fill, look at the topic and
read the latest messages on Topics, then stop both jobs and see the sidebar say so.
Every page is saved as test-artifacts/screenshots/<page>.png; the figures seen are printed.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

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

    # -- Setup: start the local broker.
    open_page(page, "Setup")
    page.get_by_role("button", name="Start broker").click()
    expect(page.get_by_text(re.compile(rf"Broker (running|started) at {bootstrap}")).first).to_be_visible(
        timeout=BROKER_START_MS
    )
    expect(page.get_by_text(re.compile(rf"^Running at {bootstrap} \(pid \d+\)"))).to_be_visible(timeout=PAGE_MS)
    no_exception(page)
    seen(f"broker running at {console.broker.bootstrap}")
    screenshot(page, "setup")

    # -- Producer: synthetic tweets, 100 events/s, topic tweets, created if missing (the page's defaults).
    open_page(page, "Producer")
    page.get_by_role("button", name="Start producer").click()
    expect(page.get_by_text(re.compile(r"Producer started \(pid \d+\)"))).to_be_visible(timeout=JOB_START_MS)
    rate = wait_for(page, METRIC_ABOVE_ZERO, "Now (events/s)", RATE_MS)
    assert rate > 0
    seen(f"producer: Now (events/s) = {rate:g}")
    wait_for(page, PLOTLY_CHART, ["Acknowledged events per second, last 15 minutes", False])
    no_exception(page)
    screenshot(page, "producer")

    # -- Consumer: the Spark job, a micro-batch every 2 seconds (the page's default).
    open_page(page, "Consumer")
    expect(page.get_by_label("Micro-batch every")).to_have_value("2 seconds")
    page.get_by_role("button", name="Start Spark job").click()
    expect(page.get_by_text(re.compile(r"Spark job started \(pid \d+\)"))).to_be_visible(timeout=JOB_START_MS)
    chart = wait_for(page, PLOTLY_CHART, ["Top 20 hashtags", True], SPARK_CHART_MS)
    assert 0 < chart["bars"] <= 20
    top = ", ".join(f"#{tag} {count:g}" for tag, count in chart["points"][:5])
    seen(f"consumer: Top 20 hashtags shows {chart['bars']} bars; the first 5 (tweets): {top}")
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
    tweets = next(row for row in rows if row["topic"] == "tweets")
    seen(
        f"topics: tweets has {tweets['partitions']} partitions, {tweets['messages']} messages, "
        f"{tweets['messages/s (now)']} messages/s"
    )
    assert tweets["partitions"] == "4"
    assert int(tweets["messages"].replace(",", "")) > 0
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

    # -- Overview.
    open_page(page, "Overview", "Tweet stream console")
    expect(page.get_by_text(re.compile(rf"^Running at {bootstrap} \(pid \d+\)"))).to_be_visible()
    screenshot(page, "overview")

    # -- Stop both jobs from their pages; the sidebar then shows neither running.
    open_page(page, "Producer")
    page.get_by_role("button", name="Stop producer").click()
    expect(page.get_by_text(re.compile(r"^Producer terminated after [\d.]+ s"))).to_be_visible(timeout=STOP_MS)
    open_page(page, "Consumer")
    page.get_by_role("button", name="Stop Spark job").click()
    expect(page.get_by_text(re.compile(r"^Spark job terminated after [\d.]+ s"))).to_be_visible(timeout=STOP_MS)
    no_exception(page)
    state = wait_for(page, SIDEBAR_JOBS_STOPPED)
    seen(f"sidebar: producer {state['Producer'][1]!r}, Spark job {state['Spark job'][1]!r}")
    assert state["Kafka broker"][0] == "success"
