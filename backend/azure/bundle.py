"""The files a Databricks job needs to run our jobs: the launcher ``run_job.py``, which runs the module
named by its first parameter as ``__main__``, and every module of ``backend/`` and ``jobs/`` the job
modules import (found by reading their imports with ``ast``). Why: docs/azure-design.md ("The job bundle").
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
PROJECT_PACKAGES = ("backend", "jobs")
JOB_MODULES = ("jobs.producer", "jobs.consumer", "jobs.create_topic")
# The Databricks runtime itself (its Spark and Spark's Python bridge): never installed as a cluster library.
CLUSTER_PROVIDED = frozenset({"pyspark", "py4j"})

LAUNCHER = "run_job.py"
LAUNCHER_SOURCE = '''\
"""Run one module of this bundle as __main__: python run_job.py jobs.producer [ARG ...].

A Databricks spark_python_task runs one file with sys.argv = [file, *parameters]; the jobs
are modules (python -m jobs.producer) that import backend/, which sits beside this file.
"""

import os
import runpy
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: run_job.py MODULE [ARG ...]")
    # __file__ is missing where a runner executes the source itself; argv[0] names the file then.
    here = os.path.dirname(os.path.abspath(globals().get("__file__") or sys.argv[0]))
    sys.path.insert(0, here)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
'''


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative to the bundle's root, POSIX separators
    content: bytes


def _module_file(module: str, root: Path) -> Path | None:
    """The source file of a project module (a package's ``__init__.py``), or None if it is not one."""
    parts = module.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement of ``source`` may load, wherever the statement is.

    Imports inside functions count too: the jobs import some modules only where they need
    them, and those must be in the bundle all the same.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            names.add(base)
            # ``from backend.runtime import processes`` imports the module backend.runtime.processes.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def project_modules(entry_modules: Iterable[str] = JOB_MODULES, root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """The project modules the entry modules import, transitively, with their packages: name -> file."""
    found: dict[str, Path] = {}
    # ``python -m`` of a package (jobs.consumer) runs its __main__, which no import names.
    pending = [*entry_modules, *(f"{module}.__main__" for module in entry_modules)]
    while pending:
        module = pending.pop()
        if module in found:
            continue
        path = _module_file(module, root)
        if path is None:
            continue
        found[module] = path
        # Importing a module runs its packages' __init__ first.
        pending.extend(_parents(module))
        pending.extend(_imported_names(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"))
    missing = [module for module in entry_modules if module not in found]
    if missing:
        raise FileNotFoundError(f"job modules not found under {root}: {', '.join(missing)}")
    return found


def job_bundle(root: Path = PROJECT_ROOT) -> list[BundleFile]:
    """The launcher, then every project file the job modules need, sorted by path."""
    files = [
        BundleFile(PurePosixPath(path.relative_to(root)).as_posix(), path.read_bytes())
        for path in project_modules(JOB_MODULES, root).values()
    ]
    return [BundleFile(LAUNCHER, LAUNCHER_SOURCE.encode()), *sorted(files, key=lambda file: file.path)]


def launcher_parameters(module: str, args: list[str]) -> list[str]:
    """The spark_python_task parameters that make the launcher run ``python -m module *args``."""
    if module not in JOB_MODULES:
        raise ValueError(f"'{module}' is not a job of the bundle (one of {', '.join(JOB_MODULES)})")
    return [module, *args]


def bundle_digest(files: Iterable[BundleFile]) -> str:
    """SHA-256 over the paths and contents, in path order: equal digests mean nothing to upload."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda file: file.path):
        path = file.path.encode()
        # Lengths first, so no two different bundles feed the same bytes to the hash.
        digest.update(len(path).to_bytes(8, "big") + path + len(file.content).to_bytes(8, "big"))
        digest.update(file.content)
    return digest.hexdigest()


def write_bundle(files: Iterable[BundleFile], folder: Path) -> None:
    """Write the bundle's files under ``folder`` (a local copy of what is uploaded)."""
    for file in files:
        target = folder.joinpath(*PurePosixPath(file.path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.content)


def third_party_imports(files: Iterable[BundleFile]) -> list[str]:
    """Top-level names of what the bundle's files import from outside the project and the standard
    library (the cluster libraries the jobs need), without pyspark and py4j, which are the runtime itself."""
    names: set[str] = set()
    for file in files:
        if not file.path.endswith(".py"):
            continue
        module = file.path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        imported = _imported_names(file.content.decode("utf-8"), module, file.path.endswith("__init__.py"))
        names.update(name.split(".")[0] for name in imported if name)
    outside = names - set(PROJECT_PACKAGES) - set(sys.stdlib_module_names) - CLUSTER_PROVIDED - {"__future__"}
    return sorted(outside)
