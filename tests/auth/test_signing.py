"""The client-side signing helper and the canonical message (no database)."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manticore_auth import AuthError, current_timestamp, sign_request

SECRET = "s3cr3t-value-for-tests"


def test_signature_is_hmac_sha256_hex_over_timestamp_method_path_and_body() -> None:
    body = b'{"side":"buy"}'
    expected = hmac.new(
        SECRET.encode(), b"1700000000000POST/api/orders?x=1" + body, hashlib.sha256
    ).hexdigest()
    assert sign_request(SECRET, "1700000000000", "POST", "/api/orders?x=1", body) == expected
    # The method is upper-cased, an int timestamp is its decimal string, a str body is UTF-8.
    assert sign_request(SECRET, 1700000000000, "post", "/api/orders?x=1", body.decode()) == expected


def test_empty_and_missing_body_sign_alike() -> None:
    a = sign_request(SECRET, "1", "GET", "/api/orderbook?depth=5")
    assert a == sign_request(SECRET, "1", "GET", "/api/orderbook?depth=5", b"")
    assert a == sign_request(SECRET, "1", "GET", "/api/orderbook?depth=5", None)
    assert a == sign_request(SECRET, "1", "GET", "/api/orderbook?depth=5", bytearray())
    assert len(a) == 64 and int(a, 16) >= 0


def test_non_ascii_path_is_signed_as_utf8() -> None:
    expected = hmac.new(SECRET.encode(), "1GET/m/é".encode(), hashlib.sha256).hexdigest()
    assert sign_request(SECRET, "1", "GET", "/m/é") == expected


@pytest.mark.parametrize(
    ("secret", "timestamp", "method", "path", "body"),
    [
        ("", "1", "GET", "/", b""),
        (b"bytes", "1", "GET", "/", b""),
        (SECRET, "1.5", "GET", "/", b""),
        (SECRET, "-1", "GET", "/", b""),
        (SECRET, " 1", "GET", "/", b""),
        (SECRET, "١٢٣", "GET", "/", b""),  # non-ASCII digits
        (SECRET, "1" * 17, "GET", "/", b""),
        (SECRET, True, "GET", "/", b""),
        (SECRET, 1.0, "GET", "/", b""),
        (SECRET, -5, "GET", "/", b""),
        (SECRET, "1", "", "/", b""),
        (SECRET, "1", "G3T", "/", b""),
        (SECRET, "1", "GET", "api/orders", b""),
        (SECRET, "1", "GET", "/a\nb", b""),
        (SECRET, "1", "GET", "/" + "a" * 9000, b""),
        (SECRET, "1", "GET", "/\ud800", b""),
        (SECRET, "1", "GET", "/", 5),
        (SECRET, "1", "GET", "/", "\ud800"),
    ],
)
def test_unsignable_parts_are_malformed(
    secret: object, timestamp: object, method: object, path: object, body: object
) -> None:
    with pytest.raises(AuthError) as info:
        sign_request(secret, timestamp, method, path, body)  # type: ignore[arg-type]
    assert info.value.code == "malformed"
    assert info.value.status == 401


def test_current_timestamp_is_integer_milliseconds() -> None:
    assert current_timestamp(lambda: 1_700_000_000.1234) == "1700000000123"
    assert current_timestamp().isdigit()


_methods = st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"])
_paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
    lambda tail: "/" + tail
)


@given(
    timestamp=st.integers(min_value=0, max_value=10**15),
    method=_methods,
    path=_paths,
    body=st.binary(max_size=64),
    other=st.tuples(st.integers(min_value=0, max_value=10**15), _methods, _paths, st.binary(max_size=64)),
)
def test_signatures_differ_exactly_when_the_signed_bytes_differ(
    timestamp: int, method: str, path: str, body: bytes, other: tuple[int, str, str, bytes]
) -> None:
    """Timestamp (digits), method (letters) and path (from '/') cannot run into each other. Where the path
    ends and the body begins is not signed (as in the scheme this follows): see docs/auth.md."""
    same_bytes = (timestamp, method, path.encode() + body) == (
        other[0],
        other[1],
        other[2].encode() + other[3],
    )
    assert (sign_request(SECRET, timestamp, method, path, body) == sign_request(SECRET, *other)) == same_bytes


# ---------------------------------------------------------------- the canonical forms' fast paths
# Each canonical_* function has a fast path for the common input; these compare it with the reference
# definition (the documented pattern) on arbitrary input, so the fast path accepts exactly what the
# pattern accepts and returns the same canonical form.

_ASCII_AND_MORE = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=127),
        st.sampled_from("٣０²é\u2028\u00a0 \t\n\x0b\x0c\r"),
    ),
    max_size=80,
)


def _outcome(function: object, value: object) -> object:
    try:
        return ("ok", function(value))  # type: ignore[operator]
    except AuthError as exc:
        return ("error", exc.code)


@given(st.one_of(_ASCII_AND_MORE, st.from_regex(r"[0-9]{1,20}", fullmatch=True), st.integers()))
def test_canonical_timestamp_accepts_exactly_1_to_16_ascii_digits(value: object) -> None:
    from manticore_auth.signing import canonical_timestamp

    if isinstance(value, int):
        expected: object = ("ok", str(value)) if 0 <= value < 10**16 else ("error", "malformed")
    else:
        assert isinstance(value, str)
        ok = re.fullmatch(r"[0-9]{1,16}", value) is not None
        expected = ("ok", value) if ok else ("error", "malformed")
    assert _outcome(canonical_timestamp, value) == expected


@given(
    st.one_of(
        _ASCII_AND_MORE,
        st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post", "Get"]),
        st.from_regex(r"[A-Za-z]{1,20}", fullmatch=True),
    )
)
def test_canonical_method_is_the_upper_cased_letters(value: str) -> None:
    from manticore_auth.signing import canonical_method

    ok = re.fullmatch(r"[A-Za-z]{1,16}", value) is not None
    assert _outcome(canonical_method, value) == (("ok", value.upper()) if ok else ("error", "malformed"))


@given(st.one_of(_ASCII_AND_MORE.map(lambda text: "/" + text), _ASCII_AND_MORE))
def test_canonical_path_refuses_control_characters_and_encodes_utf8(value: str) -> None:
    from manticore_auth.signing import canonical_path

    ok = value.startswith("/") and re.search(r"[\x00-\x1f\x7f]", value) is None
    assert _outcome(canonical_path, value) == (("ok", value.encode()) if ok else ("error", "malformed"))


_HEXISH = st.text(alphabet=st.sampled_from("0123456789abcdefABCDEFgG \t\n٣é"), min_size=60, max_size=68)


@given(st.one_of(_HEXISH, st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True), st.binary(), st.integers()))
def test_signature_digest_accepts_exactly_64_hex_digits(value: object) -> None:
    from manticore_auth.signing import canonical_signature, signature_digest

    ok = isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value) is not None
    expected = ("ok", bytes.fromhex(value)) if ok and isinstance(value, str) else ("error", "malformed")
    assert _outcome(signature_digest, value) == expected
    # the same inputs as the hex form, and one digest per signature whatever the case of its digits
    assert (_outcome(canonical_signature, value)[0] == "ok") == ok
    if ok and isinstance(value, str):
        assert bytes.fromhex(canonical_signature(value)) == signature_digest(value)


def test_digest_of_is_the_signature_as_bytes() -> None:
    from manticore_auth.signing import digest_of, mac_for_secret, signature_of

    mac = mac_for_secret(SECRET)
    message = b"1700000000000POST/api/orders{}"
    assert digest_of(mac, message).hex() == signature_of(mac, message)
    assert digest_of(mac, message) == digest_of(mac, message)  # the keyed object is left unchanged
