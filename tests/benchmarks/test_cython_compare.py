"""benchmarks.cython_compare's pieces that need no Cython build (the build itself takes minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import cython_compare


def test_the_cython_build_compiles_the_modules_that_mypyc_compiles() -> None:
    modules = cython_compare.compiled_modules()
    assert "book" in modules and "price_index" in modules
    assert not {"__init__", "demo", "errors"} & set(modules)
    assert modules == sorted(
        p.stem for p in cython_compare.SOURCE.glob("*.py") if p.stem not in {"__init__", "demo", "errors"}
    )


def test_environment_sets_only_the_given_path_and_fixes_string_hashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert "PYTHONPATH" not in cython_compare._env(None)
    env = cython_compare._env(Path("/tmp/build"))
    assert env["PYTHONPATH"] == "/tmp/build" and env["PYTHONHASHSEED"] == "0"
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    assert cython_compare._env(None)["PYTHONHASHSEED"] == "7"


def test_ratio_of_medians_and_range_of_per_round_ratios() -> None:
    rounds = {"slow": [30.0, 20.0, 45.0], "fast": [10.0, 10.0, 15.0]}
    assert cython_compare._ratio_range(rounds, "slow", "fast") == "3.00x [2.00-3.00]"


def test_a_build_is_reused_only_for_the_same_directives() -> None:
    modules = cython_compare.compiled_modules()
    same = cython_compare._fingerprint(modules, {"language_level": 3})
    assert same == cython_compare._fingerprint(modules, {"language_level": 3})
    assert same != cython_compare._fingerprint(modules, {"language_level": 3, "annotation_typing": False})
