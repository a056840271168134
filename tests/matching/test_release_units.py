"""``Release.on_durable``: a durable round's storage units go to storage in one call, in journal order,
before the journal position of the last command that had any, and before the round's stream messages;
commands beyond the durable position stay queued; a round without units submits nothing."""

from __future__ import annotations

from typing import Any

from manticore_matching.release import Release


class _Storage:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def submit_many(self, units: list[Any]) -> None:
        self.calls.append(("units", list(units)))

    def submit_journal_position(self, position: int, stamp: float | None = None) -> None:
        self.calls.append(("position", position, stamp))


def test_a_round_s_units_go_in_one_call_in_order_then_its_position_then_messages() -> None:
    calls: list[tuple[Any, ...]] = []
    storage: Any = _Storage(calls)
    release = Release()
    release.listeners.append(lambda batch: calls.append(("messages", batch)))
    release.round_listeners.append(lambda position, batches: calls.append(("round", position, batches)))
    release.durable_listeners.append(lambda position: calls.append(("durable", position)))
    m1, m3 = [{"n": 1}], [{"n": 3}]
    release.unreleased.extend(
        [
            (1, ["u1a", "u1b"], m1, 10.0),
            (2, [], [], 11.0),
            (3, ["u3"], m3, 12.0),
            (4, [], [], 13.0),  # no units: the position stored is 3's
            (5, ["u5"], [], 14.0),  # not durable yet
        ]
    )
    release.on_durable(4, storage)
    assert calls == [
        ("units", ["u1a", "u1b", "u3"]),
        ("position", 3, 12.0),
        ("messages", m1),
        ("messages", m3),
        ("round", 4, [m1, m3]),
        ("durable", 4),
    ]
    assert release.released == 4
    assert [entry[0] for entry in release.unreleased] == [5]

    calls.clear()
    release.unreleased.append((6, [], [{"n": 6}], 15.0))
    release.on_durable(6, storage)
    assert calls[:2] == [("units", ["u5"]), ("position", 5, 14.0)]

    calls.clear()
    release.unreleased.append((7, [], [], 16.0))
    release.on_durable(7, storage)  # no units in the round: nothing submitted
    assert calls == [("round", 7, []), ("durable", 7)]
    release.unreleased.append((8, ["u8"], [], 17.0))
    release.on_durable(8, None)  # no storage: the units are dropped, the rest goes on
    assert calls[-1] == ("durable", 8) and release.released == 8
