"""Setup: what this machine needs, the local broker, the Kafka connection profile, the topic, and Azure."""

from __future__ import annotations

import time

import streamlit as st

from backend.azure import wizard
from backend.azure.plan import ConfigError
from backend.console import checks
from backend.kafka import connection, local_broker
from backend.kafka.topic_names import DEFAULT_TOPIC
from backend.kafka.topics import TopicError, TopicSpec, create_topic
from backend.settings import secrets_file
from backend.settings_file import save_pipeline_target
from pages import _gate, _live

_gate.require()

settings = _live.settings()
monitor = _live.monitor(settings, local_fallback=True)  # Setup is where a broken Azure target is fixed

st.title("Setup")

# -- 1. prerequisites -----------------------------------------------------------------------

st.header("1. This machine")


@st.cache_data(ttl=300, show_spinner="Checking Java, Maven and the jars…")
def machine_checks() -> list[checks.Check]:
    return checks.all_checks()


if st.button("Check again", key="setup-recheck"):
    machine_checks.clear()
for check in machine_checks():
    if check.ok:
        st.success(f"**{check.name}**: {check.detail}")
    else:
        st.error(f"**{check.name}**: {check.detail}. Fix: {check.fix}")

# -- 2. the local broker ----------------------------------------------------------------------

st.header("2. Local Kafka broker")
broker = local_broker.LocalBroker.from_settings(settings)
status = local_broker.status(broker)
if settings.bootstrap_servers:
    st.info(f"The active profile is another cluster (`{settings.bootstrap}`); the local broker is not used.")
answering = monitor.snapshot().kafka.reachable and not settings.bootstrap_servers
if status.running:
    st.success(f"Running at `{status.bootstrap}` (pid {status.pid}). Data and log: `{broker.kafka_dir}`")
elif answering:
    st.info(
        f"A broker answers at `{status.bootstrap}`, but this console did not start it (no pid file in "
        f"`{broker.kafka_dir}`): stop it where it was started."
    )
else:
    st.warning(f"Stopped. It will listen on `{status.bootstrap}`, with its data in `{broker.kafka_dir}`.")
start_column, stop_column, _ = st.columns([1, 1, 4])
if start_column.button("Start broker", type="primary", disabled=status.running or answering, key="setup-broker-start"):
    with st.status("Starting the local Kafka broker…", expanded=True) as progress:
        began = time.monotonic()
        try:
            current, already = local_broker.start(broker, progress=lambda step: st.write(f"… {step}"))
        except local_broker.BrokerError as error:
            progress.update(label="The broker did not start", state="error")
            st.code(str(error), language=None)
        else:
            elapsed = time.monotonic() - began
            progress.update(label=f"Broker running at {current.bootstrap} ({elapsed:.1f} s)", state="complete")
            monitor.refresh()
            _live.flash("setup-broker", "success", f"Broker started at `{current.bootstrap}` in {elapsed:.1f} s.")
            st.rerun()
if stop_column.button("Stop broker", disabled=not status.running, key="setup-broker-stop"):
    with st.spinner("Stopping the broker (a clean shutdown takes a few seconds)…"):
        began = time.monotonic()
        outcome = local_broker.stop(broker)
    monitor.refresh()
    _live.flash("setup-broker", "info", f"Broker {outcome} after {time.monotonic() - began:.1f} s.")
    st.rerun()
_live.show_flash("setup-broker")

# -- 3. the connection profile ------------------------------------------------------------------

st.header("3. Kafka connection")
try:
    active = connection.active_profile(settings)
except ValueError as error:  # settings Kafka accepts but a profile does not: say so, start from local
    st.error(f"The saved connection settings are not a valid profile: {error}")
    active = connection.ConnectionProfile(kind="local")
st.caption(
    f"Active: **{active.kind}** · `{settings.bootstrap}` · {settings.kafka_security_protocol}. "
    f"Saved in `{secrets_file()}` (never committed); environment variables TWEETSTREAM_* override it."
)
kinds = {"local": "This machine's broker", "cluster": "An existing cluster", "eventhubs": "Azure Event Hubs"}
kind = st.radio("Connect to", list(kinds), format_func=kinds.get, index=list(kinds).index(active.kind), horizontal=True)

profile: connection.ConnectionProfile | None = None
problem: str | None = None
try:
    if kind == "local":
        profile = connection.ConnectionProfile(kind="local")
        st.caption(f"The local broker at `{settings.kafka_host}:{settings.kafka_port}`, no security.")
    elif kind == "cluster":
        left, right = st.columns(2)
        bootstrap = left.text_input(
            "Bootstrap servers (host:port, comma-separated)",
            value=active.bootstrap_servers if active.kind == "cluster" else "",
        )
        protocol = right.selectbox(
            "Security protocol",
            ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
            index=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].index(active.security_protocol),
        )
        mechanism = username = password = ca = None
        if protocol.startswith("SASL_"):
            mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
            saved_mechanism = active.sasl_mechanism if active.sasl_mechanism in mechanisms else "PLAIN"
            mechanism = left.selectbox("SASL mechanism", mechanisms, index=mechanisms.index(saved_mechanism))
            username = right.text_input("SASL username", value=active.sasl_username or "")
            saved, not_reused = connection.saved_password(active, bootstrap, protocol, mechanism, username)
            password = left.text_input(
                "SASL password" + (" (one is saved; leave empty to keep it)" if saved else ""), type="password"
            ) or (saved.get_secret_value() if saved else None)
            if not_reused and not password:
                st.warning(not_reused, icon=":material/key_off:")
        if protocol in ("SSL", "SASL_SSL"):
            ca = right.text_input(
                "CA certificate file (PEM; empty: the system's)", value=str(active.ssl_ca_location or "")
            )
        profile = connection.ConnectionProfile(
            kind="cluster",
            bootstrap_servers=bootstrap,
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=username or None,
            sasl_password=password,
            ssl_ca_location=ca or None,
        )
    else:
        text = st.text_input(
            "Event Hubs connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)",
            type="password",
            help="Shared access policy of the namespace; shown masked and saved only in secrets.toml.",
        )
        if text:
            profile = connection.profile_from_eventhubs(text)
            hub = f"; event hub (topic) `{profile.entity_path}`" if profile.entity_path else ""
            st.caption(f"Kafka endpoint `{profile.bootstrap_servers}`, SASL_SSL/PLAIN{hub}")
        elif active.kind == "eventhubs":
            profile = active
            st.caption(f"Saved: `{active.bootstrap_servers}` (the connection string is kept in secrets.toml).")
except ValueError as error:  # pydantic's ValidationError is a ValueError
    problem = str(error)
if problem:
    st.error(problem)

test_column, save_column, _ = st.columns([1, 1, 4])
if test_column.button("Test connection", disabled=profile is None, key="setup-test"):
    with st.spinner("Connecting (at most 10 s)…"):
        result = connection.test_connection(profile)
    # A success says its time itself ("... in 0.1 s").
    if result.ok:
        st.success(result.message)
    else:
        st.error(f"{result.message} (after {result.elapsed_s:.1f} s)")
if save_column.button("Save profile", disabled=profile is None, key="setup-save"):
    try:
        connection.save_profile(profile, secrets_file())
    except (OSError, ValueError) as error:
        st.error(f"Not saved: {error}")
    else:
        _live.flash("setup", "success", "Saved. Jobs started from now on use this profile; running jobs keep theirs.")
        st.rerun()
_live.show_flash("setup")

# -- 4. the topic --------------------------------------------------------------------------------

st.header("4. Topic")
with st.form("create-topic"):
    left, middle, right = st.columns(3)
    name = left.text_input("Name", value=DEFAULT_TOPIC)
    partitions = middle.number_input("Partitions", min_value=1, max_value=1000, value=4)
    replication = right.number_input(
        "Replication factor", min_value=1, max_value=10, value=1 if active.kind == "local" else 3
    )
    retention_hours = left.number_input("Retention (hours; 0 = the broker's default)", min_value=0, value=24)
    create = st.form_submit_button("Create topic")
if create:
    try:
        spec = TopicSpec(
            name=name.strip(),
            partitions=int(partitions),
            replication_factor=int(replication),
            retention_ms=int(retention_hours) * 3_600_000 if retention_hours else None,
        )
        with st.spinner(f"Creating '{spec.name}'…"):
            create_topic(_live.admin_client(settings), spec, timeout=10.0)
    except TopicError as error:
        st.error(str(error))
    else:
        retention = f"{retention_hours} h" if retention_hours else "the broker's default"
        st.success(
            f"Topic '{spec.name}' created: {spec.partitions} partitions, replication {spec.replication_factor}, "
            f"retention {retention}."
        )
        monitor.refresh()

# -- 5. Azure --------------------------------------------------------------------------------------

st.header("5. Azure")
with st.expander("Azure (HDInsight Kafka + Databricks Spark)"):
    st.caption(
        "The article's setup, made from here: a resource group, Kafka on HDInsight 5.1 in its own network, "
        "a Databricks workspace and cluster, the two networks peered, the topic, and the producer and consumer "
        "as Databricks jobs (started and stopped on the Producer and Consumer pages). Each step finds what an "
        "earlier run made and carries on; everything made carries the tag `tweetstream-wizard`."
    )
    principal = "set" if wizard.service_principal_set(settings) else "not set (DefaultAzureCredential: az login...)"
    st.caption(
        f"Service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET): **{principal}** · "
        f"subscription: `{settings.azure_subscription_id or 'from the plan config'}`"
    )
    plan_path = st.text_input("Plan config (.toml or .json)", value=str(wizard.EXAMPLE_PLAN), key="azure-plan-path")
    defaults = wizard.config_defaults(plan_path)
    choices: dict[str, str] = {}
    if defaults is not None:
        # Subscription, region and resource group: the config's, or picked here (the list of
        # subscriptions comes from the last "Sign in and check access").
        known = {s.id: s.name for s in st.session_state.get("azure-subscriptions", [])}
        fixed = settings.azure_subscription_id
        first = fixed or defaults["subscription_id"]
        left, middle, right = st.columns(3)
        choices["subscription_id"] = left.selectbox(
            "Subscription",
            list(dict.fromkeys([first, *known])),
            format_func=lambda sub: f"{known[sub]} ({sub})" if sub in known else sub,
            disabled=fixed is not None,
            help="Set by AZURE_SUBSCRIPTION_ID" if fixed else "Sign in and check access to list yours",
            key="azure-subscription",
        )
        regions = list(dict.fromkeys([defaults["region"], *wizard.priced_regions()]))
        choices["region"] = middle.selectbox("Region (priced ones)", regions, key="azure-region")
        choices["resource_group"] = right.text_input(
            "Resource group", value=defaults["resource_group"], key="azure-resource-group"
        )
    plan = None
    try:
        plan = wizard.load_plan_config(plan_path, choices)
    except ConfigError as error:
        st.error("The plan config cannot be planned:\n\n" + "\n".join(f"- {p}" for p in error.problems))
    except wizard.PlanError as error:
        st.error(f"No plan: {error}")
    if plan is not None:
        if st.button("Sign in and check access", key="azure-check"):
            with st.spinner("Signing in, listing subscriptions, checking permissions and the region…"):
                check = wizard.sign_in_check(plan, settings)
            st.session_state["azure-check-result"] = (plan.names.resource_group, plan.config.region, check)
            if check.failure is None:
                st.session_state["azure-subscriptions"] = check.subscriptions
                st.rerun()  # the subscription list above now holds them
        checked = st.session_state.get("azure-check-result")
        if checked is not None and checked[:2] == (plan.names.resource_group, plan.config.region):
            check = checked[2]
            if check.failure is not None:
                st.error(check.failure.line)
            else:
                st.dataframe(
                    [{"subscription": s.id, "name": s.name, "state": s.state} for s in check.subscriptions],
                    hide_index=True,
                )
                (st.success if check.access.ok else st.error)(check.access.message)
                for problem in check.region_problems:
                    st.error(problem)
                if check.ok:
                    st.success(f"Region `{plan.config.region}` offers HDInsight and Azure Databricks.")

        table = wizard.plan_rows(plan)
        st.dataframe(table.rows, hide_index=True)
        total = f"USD {table.total_hourly_usd:.2f}/h"
        st.markdown(
            f"**Total: {total}** (prices as of {table.prices_as_of}, {table.prices_status}; "
            f"subscription `{wizard.subscription(settings, plan)}`, region `{plan.config.region}`)"
        )

        def line(result: wizard.StepResult) -> None:
            if result.status == "failed":
                st.error(result.line)
            elif result.status not in ("creating", "deleting"):
                st.write(result.line)

        confirmed = st.checkbox(
            f"I understand this costs an estimated {total} from the moment the cluster exists until it is deleted",
            key="azure-confirm",
        )
        if st.button("Build (or resume) everything in the plan", key="azure-create"):
            if not confirmed:
                st.warning("Tick the confirmation above first: nothing was created.")
            else:
                with st.status("Building… (HDInsight alone takes about 20 minutes)", expanded=True) as progress:
                    bar = st.progress(0.0, text="Starting")
                    latest = st.empty()

                    def show(result: wizard.StepResult) -> None:
                        number = wizard.STEP_NUMBER.get(result.type, 0)
                        bar.progress(
                            min(number / wizard.BUILD_STEPS, 1.0), text=f"Step {number} of {wizard.BUILD_STEPS}"
                        )
                        if result.status in ("creating", "deleting"):
                            latest.caption(result.line)
                        else:
                            line(result)

                    results = wizard.build(plan, settings, progress=show)
                    failed = bool(results) and results[-1].status == "failed"
                    latest.empty()
                    progress.update(
                        label="A step failed: fix it and build again (what exists is kept)"
                        if failed
                        else "Everything in the plan is there",
                        state="error" if failed else "complete",
                    )
        deployment = wizard.deployment_rows(settings)
        if deployment:
            st.subheader("Where things are")
            st.dataframe(deployment, hide_index=True)

        st.subheader("Where the console reads its numbers")
        labels = {
            "local": "This machine (the SQLite store, Kafka's admin client)",
            "azure": "Azure (the Delta tables through the SQL warehouse, Kafka's metrics through Ambari)",
        }
        chosen = st.radio(
            "Pipeline target",
            list(labels),
            index=list(labels).index(settings.pipeline_target),
            format_func=labels.get,
            key="azure-pipeline-target",
        )
        if chosen != settings.pipeline_target and st.button("Save the pipeline target", key="azure-target-save"):
            try:
                note = save_pipeline_target(chosen)
            except ValueError as error:
                st.error(f"Not saved: {error}")
            else:
                st.success(f"Saved: the pages now read from {labels[chosen].split(' (')[0].lower()}.")
                if note:
                    st.warning(note)

        st.subheader("Delete what the wizard created")
        if st.button("List what carries the wizard's tag", key="azure-list"):
            found, failure = wizard.find_tagged(plan, settings)
            st.session_state["azure-found"] = found
            if failure is not None:
                st.error(failure.line)
        found = st.session_state.get("azure-found")
        if found is not None:
            if not found:
                st.write("Nothing carries the wizard's tag.")
            else:
                st.dataframe([{"type": k, "name": n} for k, n in found], hide_index=True)
                names = [name for _, name in found]
                if going := wizard.data_going(plan, found):
                    st.warning(going)
                sure = st.checkbox(f"Delete exactly these: {', '.join(names)}", key="azure-teardown-confirm")
                if st.button("Delete them", disabled=not sure, key="azure-teardown"):
                    with st.status("Deleting… (the HDInsight cluster takes minutes)", expanded=True) as progress:
                        results = wizard.teardown(plan, settings, names, progress=line)
                        failed = any(r.status == "failed" for r in results)
                        if failed and results[-1].type in ("teardown", "sign-in", "azure"):
                            line(results[-1])
                        progress.update(
                            label="Teardown stopped" if failed else "Deleted", state="error" if failed else "complete"
                        )
                    del st.session_state["azure-found"]
