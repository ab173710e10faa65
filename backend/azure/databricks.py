"""Signing in to a Databricks workspace (databricks-sdk 0.162.0) with our azure-core credential, the errors
and helpers the Databricks steps share, the job files uploaded as workspace files, and secrets.

The cluster is in databricks_cluster.py, the jobs and their runs in databricks_jobs.py. How the
sign-in and the X token's secret work: docs/azure-design.md ("Databricks").
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core.credentials import TokenCredential
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy, OAuthCredentialsProvider
from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.oauth import Token
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, ObjectType
from pydantic import SecretStr
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from backend.azure.arm import Progress, StepResult, report
from backend.azure.plan import Plan
from backend.azure.plan_config import TAG_KEY

# Azure Databricks' application id (its Entra resource) and Azure Resource Manager's.
DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
ARM_SCOPE = "https://management.core.windows.net/.default"

FILES = "databricks.files"


class DatabricksFailure(DatabricksError):
    """A Databricks call that failed, with its error code; the message never holds a secret.

    A DatabricksError (so an OSError), caught where callers catch the SDK's own errors."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}", error_code=error_code)


# --- the client -----------------------------------------------------------------------------------


class _EntraTokenCredentials(CredentialsStrategy):
    """A credentials strategy that asks our azure-core credential for tokens (azure-identity caches
    and refreshes them), with the headers the SDK's azure-client-secret strategy adds."""

    def __init__(self, credential: TokenCredential, workspace_resource_id: str, service_principal: bool | None) -> None:
        self._credential = credential
        self._resource_id = workspace_resource_id
        self._service_principal = service_principal

    def auth_type(self) -> str:
        return "azure-token-credential"

    def __call__(self, cfg: Any) -> CredentialsProvider:
        def token() -> Token:
            access = self._credential.get_token(DATABRICKS_SCOPE)
            expiry = datetime.datetime.fromtimestamp(access.expires_on, tz=datetime.UTC)
            return Token(access_token=access.token, token_type="Bearer", expiry=expiry)

        def headers() -> dict[str, str]:
            sent = {
                "Authorization": f"Bearer {token().access_token}",
                "X-Databricks-Azure-Workspace-Resource-Id": self._resource_id,
            }
            principal = self._service_principal
            if principal is None:  # decided once a token came (a chain knows then which one signed in)
                principal = self._service_principal = is_service_principal(self._credential)
            if principal:
                sent["X-Databricks-Azure-SP-Management-Token"] = self._credential.get_token(ARM_SCOPE).token
            return sent

        return OAuthCredentialsProvider(headers, token)


class _WorkspaceConfig(Config):
    """The SDK's Config without its host-metadata probe.

    Config() first GETs {host}/.well-known/databricks-config with a client of its own that takes
    no CA bundle (and retries a TLS failure for the whole retry budget, 300 s). It only fills in
    account id, workspace id, OIDC discovery and cloud, none of which this module uses: host and
    credentials are given.
    """

    def _resolve_host_metadata(self) -> None:
        return None


# Config finds its attributes in its own class __dict__ and caches them in _attributes: give the
# subclass the parent's list (databricks-sdk 0.162.0, as pinned).
_WorkspaceConfig._attributes = list(Config.attributes())  # type: ignore[attr-defined]


class _CaBundleAdapter(HTTPAdapter):
    """Verifies servers against one CA bundle whatever the environment says (requests lets
    REQUESTS_CA_BUNDLE override a session's ``verify``), keeping the rest (proxies) as it is."""

    def __init__(self, ca_bundle: str) -> None:
        self._ca_bundle = ca_bundle
        super().__init__(pool_connections=20, pool_maxsize=20, pool_block=True)  # the SDK's own settings

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        kwargs["verify"] = self._ca_bundle
        return super().send(request, **kwargs)


def is_service_principal(credential: TokenCredential) -> bool:
    """Whether ``credential`` signs in as a service principal: with a secret, a certificate or a client
    assertion, as a managed identity or a workload identity (azure.identity's credentials of those kinds,
    also inside an EnvironmentCredential, or the one of a chain such as DefaultAzureCredential that gave
    the last token). A user (az login, a browser) is not one."""
    from azure.identity import (
        CertificateCredential,
        ChainedTokenCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
        EnvironmentCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    if isinstance(credential, ChainedTokenCredential):
        credential = getattr(credential, "_successful_credential", None)
    if isinstance(credential, EnvironmentCredential):
        credential = getattr(credential, "_credential", None)  # what the environment configured
    return isinstance(
        credential,
        (
            ClientSecretCredential,
            CertificateCredential,
            ClientAssertionCredential,
            ManagedIdentityCredential,
            WorkloadIdentityCredential,
        ),
    )


def workspace_client(
    url: str,
    credential: TokenCredential,
    workspace_resource_id: str,
    *,
    ca_bundle: str | None = None,
    service_principal: bool | None = None,
) -> WorkspaceClient:
    """A WorkspaceClient for the workspace at ``url`` that signs in with ``credential``.

    ``service_principal``: whether the credential is a service principal's, so that an ARM token goes
    along in X-Databricks-Azure-SP-Management-Token; None: :func:`is_service_principal` decides
    (after the first token).

    ``ca_bundle``: a PEM file to trust for this client only (no process-wide environment change).
    databricks-sdk 0.162.0 has no option for it (databricks-sdk-py issue 972), so an adapter that
    verifies with it is mounted on the SDK's requests session.
    """
    strategy = _EntraTokenCredentials(credential, workspace_resource_id, service_principal)
    config = _WorkspaceConfig(host=url, credentials_strategy=strategy)
    client = WorkspaceClient(config=config)
    if ca_bundle is not None:
        session = getattr(getattr(client.api_client, "_api_client", None), "_session", None)
        if session is None:
            raise RuntimeError("this databricks-sdk keeps no requests session where expected: cannot set ca_bundle")
        session.mount("https://", _CaBundleAdapter(ca_bundle))
    return client


# --- helpers -------------------------------------------------------------------------------------


def error_code(exc: DatabricksError) -> str:
    """The REST error code of a Databricks error, else its type's name."""
    return exc.error_code or type(exc).__name__


def failed(step_type: str, name: str, exc: DatabricksError, advice: str | None = None) -> StepResult:
    """A failed step result from a Databricks error."""
    code = error_code(exc)
    return StepResult(
        step_type, name, "failed", f"{code}: {exc}", code, advice or "Fix what the message says and run again."
    )


def enum_text(value: Any) -> str | None:
    """An SDK enum's value (or any value) as text; None stays None."""
    return None if value is None else str(getattr(value, "value", value))


def tagged_for(tags: Mapping[str, str] | None, plan: Plan) -> bool:
    """Whether Databricks tags (a cluster's custom_tags, a job's tags) carry the plan's tag."""
    return (tags or {}).get(TAG_KEY) == plan.config.tag_value


# --- workspace files ------------------------------------------------------------------------------


def upload_files(
    client: WorkspaceClient, folder: str, files: Sequence[tuple[str, bytes]], *, progress: Progress | None = None
) -> StepResult:
    """Upload ``files`` (path relative to ``folder``, content) as workspace files, skipping unchanged ones."""
    folder = folder.rstrip("/")
    uploaded = unchanged = size = 0
    try:
        made: set[str] = set()
        for relative, content in files:
            path = posixpath.join(folder, relative)
            parent = posixpath.dirname(path)
            if parent not in made:
                client.workspace.mkdirs(parent)  # like mkdir -p: no error if it exists
                made.add(parent)
            if _current_content(client, path) == content:
                unchanged += 1
                continue
            report(progress, StepResult(FILES, folder, "creating", f"{relative}: {len(content)} bytes"))
            # AUTO keeps a .py without the notebook header a workspace file (the jobs' python_file).
            client.workspace.import_(
                path,
                content=base64.b64encode(content).decode("ascii"),
                format=ImportFormat.AUTO,
                overwrite=True,
            )
            uploaded += 1
            size += len(content)
    except DatabricksError as exc:
        return failed(FILES, folder, exc)
    status = "created" if uploaded else "exists"
    return StepResult(FILES, folder, status, f"{uploaded} files, {size} bytes uploaded, {unchanged} unchanged")


def _current_content(client: WorkspaceClient, path: str) -> bytes | None:
    try:
        info = client.workspace.get_status(path)
    except NotFound:
        return None
    if info.object_type != ObjectType.FILE:
        return None  # a notebook or folder by that name: overwrite it
    exported = client.workspace.export(path, format=ExportFormat.AUTO)
    return base64.b64decode(exported.content or "")


# --- secrets --------------------------------------------------------------------------------------


def put_secret(client: WorkspaceClient, scope: str, key: str, value: SecretStr) -> None:
    """Store ``value`` as ``scope``/``key`` (creating the scope if missing); jobs read it through
    ``{{secrets/<scope>/<key>}}`` in the cluster's spark_env_vars."""
    raw = value.get_secret_value()
    try:
        if scope not in {s.name for s in client.secrets.list_scopes()}:
            with contextlib.suppress(ResourceAlreadyExists):  # made by someone else meanwhile: fine
                client.secrets.create_scope(scope)
        client.secrets.put_secret(scope, key, string_value=raw)
    except DatabricksError as exc:
        message = str(exc).replace(raw, "**********") if raw else str(exc)
        raise DatabricksFailure(error_code(exc), message) from None


def secret_reference(scope: str, key: str) -> str:
    return "{{secrets/" + scope + "/" + key + "}}"
