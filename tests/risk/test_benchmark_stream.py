"""benchmarks/risk.py measures what it claims: every variant ends with the same book, risk approves every
order of the stream, and the ledger's invariants hold at the end (small sizes; no timing asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks import risk as bench


@pytest.mark.parametrize("subscribe", ["all", "needed"])
def test_every_variant_ends_with_the_same_book_and_risk_approves_all(
    subscribe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    results = []
    for variant in bench.VARIANTS:
        bench.run_child(variant, "installed", subscribe, seed=3, prefill=200, orders=400, timed=True)
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert {(r["live"], r["trades"]) for r in results} == {(results[0]["live"], results[0]["trades"])}
    assert results[0]["trades"] > 100  # the stream crosses: fills are settled, not only holds taken
    assert all(r["rejected"] == 0 for r in results)


def test_the_stream_rests_and_crosses() -> None:
    pre, ops = bench.make_stream(17, 100, 1000)
    mid = bench.MID / 100
    crossing = [o for o in ops if (o[2] == "buy") == (float(o[3]) > mid)]
    assert 0.3 < len(crossing) / len(ops) < 0.5
    assert all((o[2] == "buy") == (float(o[3]) < mid) for o in pre)


def test_both_number_shapes_end_with_the_same_book(capsys: pytest.CaptureFixture[str]) -> None:
    """``--numbers str`` (the record's strings, as risk_args passes them) and ``--numbers decimal`` settle
    the same stream to the same book, risk approving every order both ways (and its invariants holding:
    run_child checks them)."""
    results = []
    for numbers in ("str", "decimal"):
        bench.run_child(
            "book+risk", "installed", "all", seed=5, prefill=200, orders=400, timed=True, numbers=numbers
        )
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert (results[0]["live"], results[0]["trades"]) == (results[1]["live"], results[1]["trades"])
    assert results[0]["trades"] > 100 and all(r["rejected"] == 0 for r in results)
