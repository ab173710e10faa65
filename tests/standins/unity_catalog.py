"""Unity Catalog's schemas and volumes, added to the Databricks workspace stand-in.

``install_unity_catalog(dbx)`` adds these routes to a ``DatabricksStandIn`` (same server, token check and
``{"error_code", "message"}`` errors), as the Databricks REST API reference documents them (pages under
https://docs.databricks.com/api/workspace/, at the paths databricks-sdk 0.162.0 calls):

- ``GET /api/2.1/unity-catalog/current-metastore-assignment`` (metastores/current): ``metastore_id``,
  ``workspace_id`` and ``default_catalog_name``, the workspace's default catalog: the one its ARM
  ``defaultCatalog`` gave it when the ARM stand-in made it (see arm_databricks), else the one given here.
- ``GET /api/2.1/unity-catalog/schemas/{full_name}`` (schemas/get): the SchemaInfo, or 404
  SCHEMA_DOES_NOT_EXIST; ``POST /api/2.1/unity-catalog/schemas`` (schemas/create: ``name`` and
  ``catalog_name`` required; 404 CATALOG_DOES_NOT_EXIST, 409 SCHEMA_ALREADY_EXISTS).
- ``GET /api/2.1/unity-catalog/volumes/{name}`` (volumes/read, by full name): the VolumeInfo, or 404
  VOLUME_DOES_NOT_EXIST; ``POST /api/2.1/unity-catalog/volumes`` (volumes/create: ``catalog_name``,
  ``schema_name``, ``name`` and ``volume_type`` required, MANAGED without ``storage_location``;
  404 SCHEMA_DOES_NOT_EXIST, 409 VOLUME_ALREADY_EXISTS).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.standins.databricks_rest import DatabricksStandIn

DEFAULT_CATALOG = "tweetstream_databricks"


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


@dataclass
class UnityCatalogStandIn:
    default_catalog: str = DEFAULT_CATALOG
    catalogs: set[str] = field(default_factory=set)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> SchemaInfo
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> VolumeInfo

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | None:
        if not path.startswith("/api/2.1/unity-catalog/"):
            return None
        rest = path.removeprefix("/api/2.1/unity-catalog/")
        if method == "GET" and rest == "current-metastore-assignment":
            return 200, {
                "metastore_id": "11111111-2222-3333-4444-555555555555",
                "workspace_id": 1000000000000001,
                "default_catalog_name": self.default_catalog,
            }
        if method == "POST" and not isinstance(body, dict):
            return _error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        if method == "GET" and (match := re.fullmatch(r"schemas/([^/]+)", rest)):
            found = self.schemas.get(match[1])
            return (
                (200, found) if found else _error(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{match[1]}' does not exist.")
            )
        if method == "POST" and rest == "schemas":
            return self._schema_create(body)
        if method == "GET" and (match := re.fullmatch(r"volumes/([^/]+)", rest)):
            found = self.volumes.get(match[1])
            return (
                (200, found) if found else _error(404, "VOLUME_DOES_NOT_EXIST", f"Volume '{match[1]}' does not exist.")
            )
        if method == "POST" and rest == "volumes":
            return self._volume_create(body)
        return None

    def _schema_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, catalog = body.get("name"), body.get("catalog_name")
        if not isinstance(name, str) or not isinstance(catalog, str):
            return _error(400, "INVALID_PARAMETER_VALUE", "name and catalog_name are required")
        if catalog not in self.catalogs | {self.default_catalog}:
            return _error(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{catalog}' does not exist.")
        full = f"{catalog}.{name}"
        if full in self.schemas:
            return _error(409, "SCHEMA_ALREADY_EXISTS", f"Schema '{name}' already exists")
        info = {"name": name, "catalog_name": catalog, "full_name": full, "schema_id": str(uuid.uuid4())}
        if "comment" in body:
            info["comment"] = body["comment"]
        self.schemas[full] = info
        return 200, info

    def _volume_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        keys = ("catalog_name", "schema_name", "name", "volume_type")
        if not all(isinstance(body.get(key), str) for key in keys):
            return _error(400, "INVALID_PARAMETER_VALUE", f"{', '.join(keys)} are required")
        if body["volume_type"] == "MANAGED" and body.get("storage_location"):
            return _error(400, "INVALID_PARAMETER_VALUE", "a MANAGED volume takes no storage_location")
        schema = f"{body['catalog_name']}.{body['schema_name']}"
        if schema not in self.schemas:
            return _error(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{schema}' does not exist.")
        full = f"{schema}.{body['name']}"
        if full in self.volumes:
            return _error(409, "VOLUME_ALREADY_EXISTS", f"Volume '{body['name']}' already exists")
        info = {
            "catalog_name": body["catalog_name"],
            "schema_name": body["schema_name"],
            "name": body["name"],
            "full_name": full,
            "volume_type": body["volume_type"],
            "volume_id": str(uuid.uuid4()),
            "storage_location": f"abfss://metastore@standin.dfs.core.windows.net/{uuid.uuid4()}",
        }
        self.volumes[full] = info
        return 200, info


def install_unity_catalog(dbx: DatabricksStandIn, default_catalog: str = DEFAULT_CATALOG) -> UnityCatalogStandIn:
    """Serve the metastore assignment, schemas and volumes from ``dbx`` (its token, its lock, its call log)."""
    uc = UnityCatalogStandIn(default_catalog)
    dbx.extra_routes.append(uc.handle)
    return uc
