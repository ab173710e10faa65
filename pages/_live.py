"""What every page shares: the settings, the cached live monitor, the pause toggle, the sidebar.

Not a page itself (the leading underscore keeps it out of any page list).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from backend.console import targets, views
from backend.console.job_controls import JobControls
from backend.console.monitor import Monitor, close_all, monitor_key
from backend.console.supervisor import JobName
from backend.console.targets import Target, TargetError
from backend.kafka.clients import quiet_admin_client
from backend.settings import Settings
from pages._gate import admitted_only, settings  # settings: the pages read them as _live.settings()

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

REFRESH_S = 2.0  # how often the live parts redraw (the monitor samples every second)


def target(current: Settings) -> Target:
    """Where the numbers come from (this machine, or Azure); stops the page, saying why, when it cannot be read."""
    try:
        return targets.active_target(current)
    except TargetError as error:
        st.error(f"The console cannot read the pipeline's numbers: {error}.", icon=":material/cloud_off:")
        st.stop()


@st.cache_resource(show_spinner=False)
def _monitor(_settings: Settings, key: tuple[str, ...]) -> Monitor:
    # One monitor (and one Kafka admin client, or Ambari session) per cluster, target and state
    # directory, shared by every tab and session, so its 15 minutes of history outlive a page switch.
    return targets.open_monitor(_settings)  # raises TargetError: the callers say it their way


def _active_monitor(current: Settings) -> Monitor:
    """The monitor of ``current``'s profile (monitors of other profiles are closed); raises TargetError."""
    active = _monitor(current, targets.monitor_key(current))
    if active.closed:  # closed when another profile was active: start a fresh one
        _monitor.clear()
        active = _monitor(current, targets.monitor_key(current))
    close_all(keep=active)
    return active


def monitor(current: Settings | None = None, local_fallback: bool = False) -> Monitor:
    """The monitor of the active profile. When the Azure target cannot be read, the page stops saying why;
    with ``local_fallback`` (the Setup page, where the target is changed) it watches this machine instead."""
    current = current or settings()
    try:
        return _active_monitor(current)
    except TargetError as error:
        if not local_fallback:
            st.error(f"The console cannot watch Kafka: {error}.", icon=":material/cloud_off:")
            st.stop()
        st.warning(f"The Azure target cannot be read ({error}); this page watches this machine meanwhile.")
        return _active_monitor(targets.on_this_machine(current))


def banner(current: Target, current_monitor: Monitor) -> None:
    """Which target the numbers come from, and how old they are (refreshed with the live parts)."""
    snapshot = current_monitor.snapshot()
    latest = snapshot.latest_progress
    now = time.time()
    batch = (
        f"newest micro-batch recorded {views.age(now - latest.recorded_at)}"
        if latest is not None
        else "no micro-batch recorded yet"
    )
    kafka = snapshot.kafka
    sampled = f"sampled {views.age(now - kafka.sampled_at)}" if kafka.sampled_at else "not sampled yet"
    if snapshot.progress_error:
        batch += f"; the latest read failed: {snapshot.progress_error}"
    st.info(
        f"**Numbers from {current.title}.** Aggregates: {current.source} ({batch}). "
        f"Kafka: {current_monitor.describe()} ({sampled}).",
        icon=current.description.icon,
    )


@st.cache_resource(show_spinner=False)
def _admin_client(_settings: Settings, key: tuple[str, str, str]) -> AdminClient:
    return quiet_admin_client(_settings)


def admin_client(current: Settings) -> AdminClient:
    """A Kafka admin client for the active profile, shared across reruns (creating one costs a connection)."""
    return _admin_client(current, monitor_key(current))


def job_buttons(
    controls: JobControls, current_monitor: Monitor, name: JobName, arguments: Callable[[], list[str]]
) -> None:
    """Start and Stop for one job, with the outcome shown after the rerun that redraws the buttons.

    ``arguments`` gives the job's checked options, or raises RequestError with the job's reason.
    """
    buttons = controls.buttons(name)
    running = controls.running(name, current_monitor.snapshot())
    start_column, stop_column, _ = st.columns([1, 1, 4])
    if start_column.button(buttons.start, type="primary", disabled=running, key=buttons.start_key):
        with st.spinner(buttons.starting):
            outcome = controls.start(name, arguments, current_monitor)
        flash(name, outcome.kind, outcome.headline, outcome.detail)
        current_monitor.refresh()
        st.rerun()
    if stop_column.button(buttons.stop, disabled=not running, key=buttons.stop_key):
        with st.spinner(buttons.stopping):
            outcome = controls.stop(name)
        flash(name, outcome.kind, outcome.headline, outcome.detail)
        current_monitor.refresh()
        st.rerun()
    show_flash(name)


def live_interval(key: str) -> float | None:
    """A pause toggle; returns the fragment's ``run_every`` (None while paused)."""
    live = st.toggle("Live updates", value=True, key=f"live-{key}", help=f"Redraw every {REFRESH_S:g} s")
    return REFRESH_S if live else None


def sidebar() -> None:
    """The live state of the broker, the producer and the Spark job, redrawn every few seconds."""

    with st.sidebar:
        live = st.toggle("Live state", value=True, key="live-sidebar", help=f"Redraw every {REFRESH_S:g} s")

    @st.fragment(run_every=REFRESH_S if live else None)
    @admitted_only
    def state() -> None:
        current_settings = settings()
        try:
            current_monitor = _active_monitor(current_settings)
            current = targets.active_target(current_settings)
        except TargetError as error:  # said here, and each page says what to do; Setup still works
            st.warning(f"Not watching: {error}", icon=":material/cloud_off:")
            return
        snapshot = current_monitor.snapshot()
        ok, line = current.description.kafka_status(snapshot)
        st.markdown(f"**{current.description.kafka_heading}**")
        (st.success if ok else st.warning)(line, icon=":material/check_circle:" if ok else ":material/error:")
        for job in current.controls.states(snapshot):
            st.markdown(job.heading)
            (st.success if job.running else st.info)(
                job.line, icon=":material/play_circle:" if job.running else ":material/stop_circle:"
            )
        if snapshot.alerts:
            st.markdown("**Alerts**")
            for alert in snapshot.alerts:
                st.error(
                    f"{views.plain(alert.title, 200)} (since {views.clock(alert.since)}). "
                    f"{views.plain(alert.what_to_do, 200)}",
                    icon=":material/notifications_active:",
                )
        st.caption(f"Updated {views.clock(time.time())}")

    with st.sidebar:
        state()


def flash(page: str, kind: str, headline: str, detail: str | None = None) -> None:
    """Keep a message for the next rerun: after Start or Stop the page reruns to redraw its buttons."""
    st.session_state[f"flash-{page}"] = (kind, headline, detail)


def show_flash(page: str) -> None:
    kind, headline, detail = st.session_state.pop(f"flash-{page}", (None, None, None))
    if kind is None:
        return
    say(kind, headline)
    if detail:
        st.code(detail, language=None)  # a job's log lines as plain text


def say(kind: str, message: str) -> None:
    """A message drawn as its kind says: "success", "info", "warning" or "error"."""
    {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}[kind](message)
