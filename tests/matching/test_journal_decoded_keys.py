"""The journal's read side: records' keys as decoded (lookups by identity), how lines are read."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import apply
from manticore_matching.journal import Journal, JournalCorrupt, _decode, decoded_keys

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


def test_apply_holds_the_decoded_key_objects_in_a_fresh_process() -> None:
    """apply's keys (taken at import) are the objects a record decodes with, in a fresh process as a
    restart's replay runs. (In a process that has decoded many other keys, such as this test session,
    orjson's fixed-size key cache may have replaced some: lookups then compare characters, as before.)"""
    names = ("order_id", "user_id", "price", "quantity", "check", "seq", "expiry_time")
    code = (
        "import sys\n"
        "from manticore_matching import apply\n"
        "from manticore_matching.journal import decoded_keys\n"
        f"names = {names!r}\n"
        "same = [k is getattr(apply, '_' + n.upper()) for n, k in zip(names, decoded_keys(*names))]\n"
        "sys.exit(0 if all(same) else 1)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


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


def _read_before(paths: list[Path], after: int) -> tuple[list[dict[str, Any]], str | None, list[int]]:
    """Journal.read as session 23 wrote it (every line of a segment from readlines), without writing:
    the records it yields, the error it raises and the size it leaves each segment (the model)."""
    out: list[dict[str, Any]] = []
    sizes = [path.stat().st_size for path in paths]
    last = after
    tail = len(paths) - 1
    while tail > 0 and paths[tail].stat().st_size == 0:
        tail -= 1
    for index, path in enumerate(paths):
        final_segment = index >= tail
        torn = False
        lines = io.BytesIO(path.read_bytes()).readlines()
        for number, line in enumerate(lines):
            record = _decode(line)
            if record is None:
                if final_segment and number == len(lines) - 1:
                    torn = True
                    break
                return out, f"{path.name}: line {number + 1} is damaged", sizes
            position = record["n"]
            if position <= last:
                if position <= after:
                    continue
                return out, f"{path.name}: position {position} repeats", sizes
            if position != last + 1:
                return out, f"{path.name}: position {last + 1} is missing", sizes
            last = position
            out.append(record)
        good_bytes = sum(map(len, lines[:-1] if torn else lines))
        if final_segment and good_bytes < sizes[index]:
            sizes[index] = good_bytes
    return out, None, sizes


_READ_LINE = st.one_of(
    st.integers(min_value=1, max_value=8).map(lambda n: ("record", n)),
    st.sampled_from(
        [("damaged", 0), ("blank", 0), ("short", 0), ("bad crc", 1), ("not json", 0), ("no position", 0)]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    segments=st.lists(st.lists(_READ_LINE, max_size=7), min_size=1, max_size=3),
    tail=st.sampled_from([b"", b"0", b"0123456789", b"00000000 {", b"\n"]),
    after=st.integers(min_value=0, max_value=4),
)
def test_read_yields_raises_and_cuts_as_it_did(
    tmp_path_factory: Any, segments: list[list[tuple[str, int]]], tail: bytes, after: int
) -> None:
    """Segments of well-formed records in any order, damaged, blank, short, wrongly summed, non-JSON
    and position-less lines, and a last segment ending in a partial line: read() yields the records,
    raises the error and leaves the segments' sizes that the model (readlines and _decode) gives."""
    directory = tmp_path_factory.mktemp("journal")
    first = 1
    for number, lines in enumerate(segments):
        content = b""
        for kind, n in lines:
            if kind == "record":
                content += _line({"op": "x", "n": n, "segment": number})
            elif kind == "damaged":
                content += b"00000000 {}\n"
            elif kind == "blank":
                content += b"\n"
            elif kind == "short":
                content += b"0 1\n"
            elif kind == "bad crc":
                content += _line({"op": "x", "n": n}).replace(b"{", b"{ ", 1)
            elif kind == "not json":
                content += b"%08x %b\n" % (zlib.crc32(b"{x"), b"{x")
            else:
                content += _line({"op": "x"})
        if number == len(segments) - 1:
            content += tail
        (directory / f"journal-{first:016d}.log").write_bytes(content)
        first += 10
    journal = Journal(directory)
    expected, error, sizes = _read_before(journal.segments(), after)
    got: list[dict[str, Any]] = []
    if error is None:
        got = list(journal.read(after=after))
        assert journal.appended == (expected[-1]["n"] if expected else after)
        assert [path.stat().st_size for path in journal.segments()] == sizes
    else:
        with pytest.raises(JournalCorrupt) as raised:
            got.extend(journal.read(after=after))
        assert str(raised.value) == error
    assert got == expected
