"""``security._headers``: the request's headers by name as ``request.headers.get`` reads them (the first
of a repeated name wins), from one ``dict()`` when no name repeats."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from manticore_api import security

_NAMES = st.sampled_from([b"host", b"x-mc-apikey", b"x-mc-timestamp", b"x-mc-signature", b"authorization"])
_PAIRS = st.lists(st.tuples(_NAMES, st.binary(max_size=8)), max_size=8)


@given(_PAIRS)
def test_the_first_of_a_repeated_header_wins(raw: list[tuple[bytes, bytes]]) -> None:
    headers = security._headers(raw)
    reference = Headers(raw=raw)
    assert set(headers) == {name for name, _ in raw}
    for name, value in headers.items():
        assert value.decode("latin-1") == reference.get(name.decode("latin-1"))


@given(_PAIRS)
def test_headers_given_as_another_iterable(raw: list[tuple[bytes, bytes]]) -> None:
    assert security._headers(iter(raw)) == security._headers(tuple(raw)) == security._headers(raw)
