"""The journal's read side: records' keys as decoded (lookups by identity), and the positions' rule."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import apply
from manticore_matching.journal import Journal, JournalCorrupt, decoded_keys

_PLACE_KEYS = (
    "op",
    "ts",
    "order_id",
    "client_order_id",
    "user_id",
    "symbol",
    "side",
    "order_type",
    "price",
    "quantity",
    "time_in_force",
    "expiry_time",
    "stop_price",
    "displayed_quantity",
    "trail_value",
    "trail_is_percent",
    "self_trade_prevention",
    "seq",
    "check",
    "n",
)


def _line(record: dict[str, Any]) -> bytes:
    body = orjson.dumps(record)
    return b"%08x %b\n" % (zlib.crc32(body), body)


def test_decoded_keys_are_the_names_in_order() -> None:
    assert decoded_keys("n", "op", "order_id") == ("n", "op", "order_id")
    with pytest.raises(ValueError, match="distinct"):
        decoded_keys("n", "n")


def test_a_read_record_holds_the_decoded_key_objects(tmp_path: Path) -> None:
    """What the replay's lookups by identity rest on: every key of a record the journal reads is the
    object decoded_keys gives for its name (apply's keys included), read before or after them."""
    before = decoded_keys(*_PLACE_KEYS)
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    for i in range(3):
        journal.append(dict.fromkeys(_PLACE_KEYS[:-1], i))
    assert journal.wait(3, 10)
    journal.close()
    records = list(Journal(tmp_path).read())
    after = decoded_keys(*_PLACE_KEYS)
    assert len(records) == 3
    for record in records:
        assert tuple(record) == _PLACE_KEYS
        assert all(key is known for key, known in zip(record, before, strict=True))
        assert all(key is known for key, known in zip(record, after, strict=True))
    assert records[0].get(apply._ORDER_ID) == 0
    by_name = dict(zip(_PLACE_KEYS, records[0], strict=True))
    for name in ("order_id", "user_id", "price", "quantity", "check", "seq", "expiry_time"):
        assert by_name[name] is getattr(apply, f"_{name.upper()}")


def test_apply_finds_the_fields_of_a_record_built_with_other_key_objects() -> None:
    """A record whose keys are not the decoded objects (built by hand): the same fields are found."""
    keys = decoded_keys(*_PLACE_KEYS)
    built = {"".join(list(key)): index for index, key in enumerate(keys)}
    assert all(a is not b for a, b in zip(built, keys, strict=True))
    assert built[apply._PRICE] == _PLACE_KEYS.index("price")
    assert built[apply._EXPIRY_TIME] == _PLACE_KEYS.index("expiry_time")


def _expected(positions: list[int], after: int) -> tuple[list[int], str | None]:
    """The positions read() yields and the error it raises, by the rule as session 23 wrote it."""
    out: list[int] = []
    last = after
    for position in positions:
        if position <= last:
            if position <= after:
                continue
            return out, f"position {position} repeats"
        if position != last + 1:
            return out, f"position {last + 1} is missing"
        last = position
        out.append(position)
    return out, None


@settings(max_examples=150, deadline=None)
@given(
    positions=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=12),
    after=st.integers(min_value=0, max_value=6),
)
def test_positions_rise_by_one_after_the_checkpoint(
    tmp_path_factory: Any, positions: list[int], after: int
) -> None:
    directory = tmp_path_factory.mktemp("journal")
    (directory / "journal-0000000000000001.log").write_bytes(
        b"".join(_line({"op": "x", "n": n}) for n in positions)
    )
    expected, error = _expected(positions, after)
    got: list[int] = []
    journal = Journal(directory)
    if error is None:
        got = [record["n"] for record in journal.read(after=after)]
        assert got == expected
        assert journal.appended == (expected[-1] if expected else after)
    else:
        with pytest.raises(JournalCorrupt, match=error):
            for record in journal.read(after=after):
                got.append(record["n"])
        assert got == expected
