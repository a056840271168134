"""The server benchmark's report of the journal's fsync rounds in a paced window (issue 17)."""

from __future__ import annotations

from benchmarks.server import _JOURNAL_SERIES, journal_cell

EXPOSITION = """\
# HELP manticore_journal_appended journal records appended
# TYPE manticore_journal_appended gauge
manticore_journal_appended 1234.0
# HELP manticore_journal_durable journal records on disk
# TYPE manticore_journal_durable gauge
manticore_journal_durable 1200.0
# HELP manticore_journal_batches journal group commits
# TYPE manticore_journal_batches gauge
manticore_journal_batches 300.0
"""


def test_the_journal_series_are_read_from_the_prometheus_text() -> None:
    assert dict(_JOURNAL_SERIES.findall(EXPOSITION)) == {"durable": "1200.0", "batches": "300.0"}


def test_the_journal_cell_gives_rounds_per_second_and_records_per_round() -> None:
    assert journal_cell({"journal": {"rounds_per_s": 912.4, "records_per_round": 4.61}}) == "912 (4.6)"
    assert journal_cell({"journal": {"rounds_per_s": 0.0, "records_per_round": None}}) == "0 (n/a)"
    assert journal_cell({}) == "n/a"
