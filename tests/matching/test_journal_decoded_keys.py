"""The journal's read side: records' keys as decoded (lookups by identity), the positions' rule, record_at."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import apply
from manticore_matching.journal import Journal, JournalCorrupt, _decode, _line_at, decoded_keys

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


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"\n", b"bc", b"\n\n", b"x\ny"]), max_size=12).map(b"".join),
    index=st.integers(min_value=0, max_value=14),
)
def test_line_at_is_the_line_readlines_gives(data: bytes, index: int) -> None:
    lines = io.BytesIO(data).readlines()
    assert _line_at(data, index) == (lines[index] if index < len(lines) else None)


def _record_at_before(journal: Journal, position: int) -> dict[str, Any] | None:
    """Journal.record_at as session 23 wrote it (every line read with readlines): the model."""
    if position < 1:
        return None
    holder = None
    for path in journal.segments():
        if int(path.name[len("journal-") : -len(".log")]) > position:
            break
        holder = path
    if holder is None:
        return None
    first = int(holder.name[len("journal-") : -len(".log")])
    with holder.open("rb") as handle:
        lines = handle.readlines()
    index = position - first
    if 0 <= index < len(lines):
        record = _decode(lines[index])
        if record is not None and record["n"] == position:
            return record
    for line in lines:
        record = _decode(line)
        if record is not None and record["n"] == position:
            return record
    return None


_SEGMENT_LINE = st.one_of(
    st.integers(min_value=1, max_value=9).map(lambda n: ("record", n)),
    st.sampled_from([("damaged", 0), ("blank", 0)]),
)


@settings(max_examples=150, deadline=None)
@given(
    segments=st.lists(st.lists(_SEGMENT_LINE, max_size=8), min_size=1, max_size=3),
    torn=st.booleans(),
    position=st.integers(min_value=0, max_value=12),
)
def test_record_at_finds_what_it_found_before(
    tmp_path_factory: Any, segments: list[list[tuple[str, int]]], torn: bool, position: int
) -> None:
    """Segments with records out of place, repeated, damaged or blank lines and a torn last line: the
    same record (or None) as the model, which read every line."""
    directory = tmp_path_factory.mktemp("journal")
    first = 1
    for number, lines in enumerate(segments):
        content = b""
        for index, (kind, n) in enumerate(lines):
            if kind == "record":
                content += _line({"op": "x", "n": n, "i": index, "segment": number})
            elif kind == "damaged":
                content += b"00000000 {}\n"
            else:
                content += b"\n"
        if torn and number == len(segments) - 1:
            content += _line({"op": "x", "n": first + len(lines)})[:-3]
        (directory / f"journal-{first:016d}.log").write_bytes(content)
        first += max(len(lines), 1)
    journal = Journal(directory)
    assert journal.record_at(position) == _record_at_before(journal, position)
