"""Which build of manticore_orderbook is under test (``make test`` runs it on both), and the build hook.

``make test-compiled`` sets ``MANTICORE_EXPECT_COMPILED=1`` and runs this suite against the installed
mypyc build; the plain run tests the editable (pure-Python) install. The list of compiled modules is
setup.py's own (every module of the package but its named exclusions), loaded from the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

import manticore_orderbook
from manticore_orderbook import numbers

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "src" / "manticore_orderbook"
EXPECT_COMPILED = bool(os.environ.get("MANTICORE_EXPECT_COMPILED"))


def _load_setup() -> ModuleType:
    """A fresh copy of setup.py as a module (its ``setup()`` only runs when the file is executed)."""
    spec = importlib.util.spec_from_file_location("manticore_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = _load_setup()


def _is_extension(module: ModuleType) -> bool:
    return (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def test_compiled_says_which_build_is_loaded() -> None:
    assert manticore_orderbook.COMPILED is EXPECT_COMPILED


@pytest.mark.parametrize("name", SETUP.compiled_modules())
def test_every_compiled_module_is_of_the_build_under_test(name: str) -> None:
    module = importlib.import_module(f"manticore_orderbook.{name}")
    assert _is_extension(module) is EXPECT_COMPILED, module.__file__


@pytest.mark.parametrize("name", sorted(SETUP.INTERPRETED))
def test_the_named_exclusions_stay_interpreted(name: str) -> None:
    module = importlib.import_module(
        "manticore_orderbook" if name == "__init__" else f"manticore_orderbook.{name}"
    )
    assert Path(module.__file__ or "").suffix == ".py"


def test_the_compiled_list_is_the_package_minus_its_named_exclusions() -> None:
    modules = {path.stem for path in SOURCES.glob("*.py")}
    assert set(SETUP.INTERPRETED) <= modules, "an exclusion names a module that no longer exists"
    assert all(reason.strip() for reason in SETUP.INTERPRETED.values())
    assert set(SETUP.compiled_modules()) == modules - set(SETUP.INTERPRETED)
    assert {"book", "events", "model", "numbers", "price_index"} <= set(SETUP.compiled_modules())


def test_no_compiled_module_sits_next_to_the_sources() -> None:
    """An editable install must run the edited ``.py`` files, never a stale extension module beside them."""
    stale = [p.name for p in SOURCES.iterdir() if p.name.endswith(tuple(EXTENSION_SUFFIXES))]
    assert stale == []


# -- the build hook's decision (setup.py's MANTICORE_BUILD) --------------------------------------------


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh setup.py module (its decision is made once per process) run as ``setup.py bdist_wheel``."""
    monkeypatch.setattr(sys, "argv", ["setup.py", "bdist_wheel"])
    monkeypatch.delenv("MANTICORE_BUILD", raising=False)
    return _load_setup()


def test_pure_is_never_compiled(hook: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANTICORE_BUILD", "pure")
    assert hook.compile_now() is False


def test_an_unknown_build_is_refused(hook: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANTICORE_BUILD", "fast")
    with pytest.raises(SystemExit, match="expected one of auto, compiled, pure"):
        hook.compile_now()


@pytest.mark.parametrize("command", ["editable_wheel", "develop"])
def test_an_editable_install_builds_the_pure_source(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["setup.py", command])
    assert hook.compile_now() is False
    assert capsys.readouterr().err == ""


def test_an_editable_install_refuses_to_be_compiled(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["setup.py", "editable_wheel"])
    monkeypatch.setenv("MANTICORE_BUILD", "compiled")
    with pytest.raises(SystemExit, match="editable install always uses the pure-Python source"):
        hook.compile_now()


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_auto_compiles_where_a_compiler_works(hook: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mypyc.build")
    assert hook.compile_now() is True
    assert capsys.readouterr().err == ""


def test_auto_without_a_compiler_falls_back_with_one_warning_line(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("mypyc.build")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert hook.compile_now() is False
    assert hook.compile_now() is False  # decided once: still one line
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "WARNING" in lines[0] and "pure-Python" in lines[0] and "no working C compiler" in lines[0]


def test_compiled_without_a_compiler_fails_loudly(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("mypyc.build")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("MANTICORE_BUILD", "compiled")
    with pytest.raises(SystemExit, match="MANTICORE_BUILD=compiled but no working C compiler"):
        hook.compile_now()


def test_the_numbers_module_knows_which_build_it_is() -> None:
    """``numbers._INTERPRETED`` picks the float memo (interpreter only); it must match the build."""
    assert numbers._INTERPRETED is not _is_extension(numbers)
