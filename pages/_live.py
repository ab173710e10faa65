"""What every page shares: the settings, the cached live monitor, the pause toggle, the sidebar.

Not a page itself (the leading underscore keeps it out of any page list).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st
from confluent_kafka.admin import AdminClient

from backend.console import supervisor, targets, views
from backend.console.job_requests import RequestError
from backend.console.monitor import Monitor, Snapshot, close_all, monitor_key
from backend.console.supervisor import JobName
from backend.console.targets import Target, TargetError
from backend.kafka.clients import client_config
from backend.settings import Settings, load_settings, secrets_file

REFRESH_S = 2.0  # how often the live parts redraw (the monitor samples every second)
IDLE_AFTER_S = 60.0  # on Azure, the monitor stops reading a minute after the last page redraw
CLOUD_STATE_TTL_S = 10.0  # the sidebar asks Databricks for the jobs' runs at most this often


def settings() -> Settings:
    """The console's settings, read afresh at every rerun (the profile may have been saved since).

    Settings that cannot be read stop the page with the reason: nothing else can work without them.
    """
    try:
        return load_settings()
    except ValueError as error:  # pydantic's ValidationError, or a secrets file that is not TOML
        st.error(
            f"The console's settings cannot be read: {error}\n\nFix the TWEETSTREAM_* environment "
            f"variables or {secrets_file()}, then reload this page."
        )
        st.stop()


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
    current = targets.active_target(_settings)  # raises TargetError: the callers say it their way
    return Monitor(
        _settings,
        metrics=targets.kafka_metrics(_settings),
        progress=current.reader.latest_progress,
        # On Azure each read is a SQL warehouse statement: none while no page is open, so it can stop.
        idle_after_s=IDLE_AFTER_S if current.is_cloud else None,
    )


def _monitor_key(current: Settings) -> tuple[str, ...]:
    return (*monitor_key(current), *targets.target_key(current))


def _active_monitor(current: Settings) -> Monitor:
    """The monitor of ``current``'s profile (monitors of other profiles are closed); raises TargetError."""
    active = _monitor(current, _monitor_key(current))
    if active.closed:  # closed when another profile was active: start a fresh one
        _monitor.clear()
        active = _monitor(current, _monitor_key(current))
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
        return _active_monitor(current.model_copy(update={"pipeline_target": "local"}))


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
        icon=":material/cloud:" if current.is_cloud else ":material/computer:",
    )


@st.cache_resource(show_spinner=False)
def _admin_client(_settings: Settings, key: tuple[str, str, str]) -> AdminClient:
    config = client_config(_settings)
    config.update({"error_cb": lambda _error: None, "log_level": 0})  # failures are reported by the calls
    return AdminClient(config)


def admin_client(current: Settings) -> AdminClient:
    """A Kafka admin client for the active profile, shared across reruns (creating one costs a connection)."""
    return _admin_client(current, monitor_key(current))


class KafkaUnreachable(RuntimeError):
    """Kafka does not answer: a job started now would only fail."""


def require_kafka(current: Monitor) -> None:
    """Sample Kafka now (bounded) and raise KafkaUnreachable with what to do when it does not answer."""
    snapshot = current.refresh()
    if snapshot.kafka.reachable:
        return
    # The monitor's reason tells a refused login or certificate from a closed port.
    if current.settings.bootstrap_servers:
        what_to_do = "Check the connection profile on the Setup page."
    else:
        what_to_do = "Start the local broker on the Setup page, or check the connection profile there."
    raise KafkaUnreachable(f"Kafka does not answer ({snapshot.kafka.error}). {what_to_do}")


def job_buttons(
    current_settings: Settings,
    current_monitor: Monitor,
    name: JobName,
    label: str,
    arguments: Callable[[], list[str]],
    started_note: str = "",
    stopping_note: str = "",
) -> None:
    """Start and Stop for one job, with the outcome shown after the rerun that redraws the buttons.

    ``arguments`` gives the job's checked options, or raises RequestError with the job's reason.
    """
    view = current_monitor.snapshot().producer if name == "producer" else current_monitor.snapshot().consumer
    title = label[0].upper() + label[1:]
    start_column, stop_column, _ = st.columns([1, 1, 4])
    if start_column.button(f"Start {label}", type="primary", disabled=view.running, key=f"{name}-start"):
        try:
            checked = arguments()
            require_kafka(current_monitor)
            with st.spinner(f"Starting the {label}…"):
                started, already = supervisor.start_job(current_settings.state_dir, name, checked)
            if already:
                flash(name, "info", f"The {label} is already running (pid {started.pid}).")
            elif not started.running:
                flash(name, "success", f"The {label} ran and {started.state} already.")
            else:
                flash(name, "success", f"{title} started (pid {started.pid}){started_note}.")
        except (RequestError, KafkaUnreachable) as error:
            flash(name, "error", f"Not started: {error}")
        except supervisor.JobError as error:
            headline, _, detail = str(error).partition("\n")
            flash(name, "error", f"Not started: {headline}", detail)
        current_monitor.refresh()
        st.rerun()
    if stop_column.button(f"Stop {label}", disabled=not view.running, key=f"{name}-stop"):
        with st.spinner(f"Stopping the {label}{stopping_note}…"):
            began = time.monotonic()
            outcome = supervisor.stop_job(current_settings.state_dir, name)
        flash(name, "info", f"{title} {outcome} after {time.monotonic() - began:.1f} s.")
        current_monitor.refresh()
        st.rerun()
    show_flash(name)


def live_interval(key: str) -> float | None:
    """A pause toggle; returns the fragment's ``run_every`` (None while paused)."""
    live = st.toggle("Live updates", value=True, key=f"live-{key}", help=f"Redraw every {REFRESH_S:g} s")
    return REFRESH_S if live else None


def kafka_line(snapshot: Snapshot) -> tuple[bool, str]:
    """Whether Kafka answers, and one line saying so."""
    kafka = snapshot.kafka
    if kafka.reachable:
        topics = len(kafka.topics)
        line = f"{snapshot.bootstrap} · {topics} topic{'s' if topics != 1 else ''}"
        if snapshot.local_broker is not None and not snapshot.local_broker.running:
            line += " (a broker this console did not start)"
        return True, line
    if snapshot.local_broker is not None and not snapshot.local_broker.running:
        return False, f"local broker stopped ({snapshot.bootstrap})"
    if kafka.sampled_at == 0.0:
        return False, f"{snapshot.bootstrap} · checking…"
    return False, kafka.error or f"{snapshot.bootstrap} unreachable"


def sidebar() -> None:
    """The live state of the broker, the producer and the Spark job, redrawn every few seconds."""

    with st.sidebar:
        live = st.toggle("Live state", value=True, key="live-sidebar", help=f"Redraw every {REFRESH_S:g} s")

    @st.fragment(run_every=REFRESH_S if live else None)
    def state() -> None:
        current_settings = settings()
        try:
            current_monitor = _active_monitor(current_settings)
        except TargetError as error:  # said here, and each page says what to do; Setup still works
            st.warning(f"Not watching: {error}", icon=":material/cloud_off:")
            return
        snapshot = current_monitor.snapshot()
        if current_settings.pipeline_target == "azure":
            ok = snapshot.kafka.reachable
            line = current_monitor.describe() if ok else (snapshot.kafka.error or "not reachable")
            st.markdown("**Kafka (HDInsight)**")
        else:
            ok, line = kafka_line(snapshot)
            st.markdown("**Kafka broker**")
        (st.success if ok else st.warning)(line, icon=":material/check_circle:" if ok else ":material/error:")
        if current_settings.pipeline_target == "azure":
            for label, (running, state) in _cloud_run_states(
                current_settings, targets.target_key(current_settings)
            ).items():
                st.markdown(f"**{label}** (Databricks)")
                (st.success if running else st.info)(
                    state, icon=":material/play_circle:" if running else ":material/stop_circle:"
                )
        else:
            for label, view in (("Producer", snapshot.producer), ("Spark job", snapshot.consumer)):
                st.markdown(f"**{label}**")
                if view.running:
                    st.success(views.job_line(view), icon=":material/play_circle:")
                else:
                    st.info(views.job_line(view), icon=":material/stop_circle:")
        st.caption(f"Updated {views.clock(time.time())}")

    with st.sidebar:
        state()


@st.cache_data(ttl=CLOUD_STATE_TTL_S, show_spinner=False)
def _cloud_run_states(_settings: Settings, key: tuple[str, ...]) -> dict[str, tuple[bool, str]]:
    """The newest Databricks run of each cloud job: (running, state line); asked at most every 10 s, whatever
    the number of tabs (each ask is a REST call to the workspace)."""
    from backend.azure import cloud_jobs

    deployment = cloud_jobs.cloud_deployment(_settings)
    if deployment is None:
        return {}
    states = {}
    for label, name in (("Producer", "producer"), ("Spark job", "consumer")):
        view = cloud_jobs.job_view(_settings, deployment, name)  # type: ignore[arg-type]
        states[label] = (view.running, view.error or view.state)
    return states


def flash(page: str, kind: str, headline: str, detail: str | None = None) -> None:
    """Keep a message for the next rerun: after Start or Stop the page reruns to redraw its buttons."""
    st.session_state[f"flash-{page}"] = (kind, headline, detail)


def show_flash(page: str) -> None:
    kind, headline, detail = st.session_state.pop(f"flash-{page}", (None, None, None))
    if kind is None:
        return
    {"success": st.success, "info": st.info, "error": st.error}[kind](headline)
    if detail:
        st.code(detail, language=None)  # a job's log lines as plain text
