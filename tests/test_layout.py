"""The connector seam holds: a CRM is one folder.

- No module outside a vendor folder names a CRM in its code (identifiers and strings; comments and
  docstrings may use one as an example): adding a CRM edits no core module.
- target-health does not import tap-crm (a loader does not depend on an extractor), and product
  code does not import the sandbox, an emulator or the conformance kit: they are a distribution
  of their own (sandbox/), which a user's install of the plugins does not carry.
- Every vendor folder has the same file names.
- No test sleeps on the wall clock to wait out the sandbox: tests advance its clock.
"""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import sys
import tokenize
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_connectors import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "connectors" / "crm_connectors"
PRODUCT = (PACKAGE, ROOT / "tap-crm" / "tap_crm", ROOT / "target-health" / "target_health")
VENDORS = registry.names()
#: The files every vendor folder holds (emulator/ holds its own).
VENDOR_FILES = (
    "__init__.py", "settings.py", "client.py", "auth.py", "pacing.py", "errors.py",
    "resources.py", "writer.py", "canonical.py", "API.md",
)  # fmt: skip
EMULATOR_FILES = ("__init__.py", "app.py", "model.py", "seed.py", "FIDELITY.md")


def _is_vendor_folder(path: Path) -> bool:
    return path.is_relative_to(PACKAGE) and any(
        path.is_relative_to(PACKAGE / name) for name in VENDORS
    )


def _core_files(*, with_sandbox: bool) -> Iterator[Path]:
    for top in PRODUCT:
        for path in sorted(top.rglob("*")):
            if path.suffix not in (".py", ".json") or _is_vendor_folder(path):
                continue
            if not with_sandbox and path.is_relative_to(PACKAGE / "sandbox"):
                continue
            yield path


def _code_tokens(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of the identifiers and strings of Python code, docstrings left out."""
    docstrings = {
        node.body[0].value.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    }
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME or (
            tok.type == tokenize.STRING and tok.start[0] not in docstrings
        ):
            yield tok.start[0], tok.string


def test_given_the_core_modules_then_none_names_a_crm_in_its_code() -> None:
    # Given every installed CRM's name
    assert VENDORS, "no connector is registered"
    pattern = re.compile("|".join(VENDORS), re.IGNORECASE)
    # when the code of every module outside the vendor folders is read
    found = []
    for path in _core_files(with_sandbox=True):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            hits = [
                (n, line) for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)
            ]
        else:
            hits = [(n, t) for n, t in _code_tokens(text) if pattern.search(t)]
        found += [f"{path.relative_to(ROOT)}:{n}: {t.strip()}" for n, t in hits]
    # then no identifier or string names one
    assert not found, "\n".join(found)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in a module of the package tree."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for top in PRODUCT:
        if path.is_relative_to(top):
            package = [top.name, *path.relative_to(top).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, module
            for alias in node.names:  # `from .. import sandbox` imports a module too
                yield node.lineno, f"{module}.{alias.name}"


def _product_modules() -> Iterator[Path]:
    for top in PRODUCT:
        for path in sorted(top.rglob("*.py")):
            rel = path.relative_to(top).parts
            if {"sandbox", "emulator", "testing"} & set(rel):
                continue  # the sandbox distribution (sandbox/pyproject.toml)
            yield path


def test_given_the_plugins_and_connectors_then_they_import_neither_sandbox_nor_emulators() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _product_modules()
        for line, module in _imports(path)
        if module.startswith("crm_connectors.sandbox") or ".emulator" in f"{module}."
    ]
    assert not bad, "\n".join(bad)


def test_given_target_health_then_it_does_not_import_tap_crm() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "target-health" / "target_health").rglob("*.py"))
        for line, module in _imports(path)
        if module == "tap_crm" or module.startswith("tap_crm.")
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("vendor", VENDORS)
def test_given_a_vendor_folder_then_it_has_the_standard_file_names(vendor: str) -> None:
    folder = PACKAGE / vendor
    assert [n for n in VENDOR_FILES if not (folder / n).is_file()] == []
    spec = registry.get(vendor)
    if spec.emulator:
        assert [n for n in EMULATOR_FILES if not (folder / "emulator" / n).is_file()] == []


def _sleeps(path: Path) -> Iterator[tuple[int, bool]]:
    """(line, inside a polling loop) of each ``time.sleep(...)`` call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_loop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            in_loop |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "sleep"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "time"
        ):
            yield node.lineno, id(node) in in_loop


def test_given_the_tests_then_none_sleeps_to_wait_out_the_sandbox() -> None:
    # A sleep in a polling loop waits for another process; any other sleep would be waiting for
    # a sandbox timeout, which tests pass by advancing the sandbox's clock instead. The
    # read-ahead unit test slows a fake fetch, with no sandbox involved.
    bad = [
        f"{path.name}:{line}"
        for path in sorted(Path(__file__).parent.glob("*.py"))
        if path.name != "test_readahead.py"
        for line, polling in _sleeps(path)
        if not polling
    ]
    assert not bad, bad


def _wheel_files(project: Path, out: Path) -> list[str]:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_given_the_distributions_then_the_plugins_carry_no_sandbox_and_the_sandbox_every_emulator(
    tmp_path: Path,
) -> None:
    # Given a clean copy of the sources (no build/ or egg-info of earlier builds)
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".*", "build", "*.egg-info", "__pycache__", "bench", "tests", "demo-data", "output"
        ),
    )
    # when the plugins' distribution is built, as a user's pip install builds it
    plugins = _wheel_files(src, tmp_path / "plugins")
    # then it holds every connector's code and API.md, and no sandbox, emulator or kit
    for name in VENDORS:
        assert f"crm_connectors/{name}/writer.py" in plugins
        assert f"crm_connectors/{name}/API.md" in plugins
    assert not [f for f in plugins if re.search(r"/(sandbox|emulator|testing)/", f)]
    # and the sandbox's distribution holds every connector's emulator, found by its folder
    sandbox = _wheel_files(src / "sandbox", tmp_path / "sandbox")
    for name in VENDORS:
        if registry.get(name).emulator:
            assert f"crm_connectors/{name}/emulator/app.py" in sandbox
            assert f"crm_connectors/{name}/emulator/FIDELITY.md" in sandbox
    assert "crm_connectors/testing/__init__.py" in sandbox
    assert not [f for f in sandbox if f.endswith("/writer.py")]


def test_given_the_plugins_then_each_private_sdk_method_they_override_is_justified() -> None:
    from singer_sdk import Stream, Tap, Target
    from singer_sdk.sinks import BatchSink

    from tap_crm.streams import CrmStream
    from tap_crm.tap import TapCrm
    from target_health.target import HealthSink, TargetHealth

    # Given the plugins' classes over singer-sdk's, and pyproject's note on the SDK pin
    note = (ROOT / "pyproject.toml").read_text()
    pairs = ((CrmStream, Stream), (TapCrm, Tap), (HealthSink, BatchSink), (TargetHealth, Target))
    overridden = {
        name
        for ours, sdk in pairs
        for name in vars(ours)
        if name.startswith("_")
        and not name.startswith("__")
        and name != "_abc_impl"
        and callable(getattr(sdk, name, None))
    }
    # then every private SDK method they override is named there, with its reason
    assert overridden, "no private override found: the check would pass on anything"
    assert sorted(n for n in overridden if n not in note) == []
