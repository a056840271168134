"""Binance request signing: the published test vectors, the raw payload rules, the timing window, and
verification with real Manticore API keys (AuthManager on SQLite)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest

from manticore_api.binance.errors import BinanceError
from manticore_api.binance.signing import check_timestamp, merged_params, split_signature, verify
from manticore_auth import AuthManager, ScryptParams
from manticore_auth.signing import mac_for_secret, signature_of

# Binance's documented example (rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys").
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ALL_PARAMS = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
VECTOR = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
# Example 3: part in the query string, part in the body; signed as query + body with no separator.
MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
MIXED_VECTOR = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
NOW_MS = 1_499_827_319_559


def _sign(secret: str, payload: str) -> str:
    return signature_of(mac_for_secret(secret), payload.encode())


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        (f"{ALL_PARAMS}&signature={VECTOR}", "", VECTOR),  # example 1: query string only
        ("", f"{ALL_PARAMS}&signature={VECTOR}", VECTOR),  # example 2: body only
        (MIXED_QUERY, f"{MIXED_BODY}&signature={MIXED_VECTOR}", MIXED_VECTOR),  # example 3: both
    ],
)
def test_binance_published_vectors(query: str, body: str, expected: str) -> None:
    unsigned_query, query_signature = split_signature(query)
    unsigned_body, body_signature = split_signature(body)
    assert (query_signature or body_signature) == expected
    assert _sign(SECRET, unsigned_query + unsigned_body) == expected
    assert merged_params(query, body)["timestamp"] == "1499827319559"


def test_split_keeps_the_other_pairs_byte_for_byte() -> None:
    assert split_signature("b=%20x&signature=AB12&a=1") == ("b=%20x&a=1", "AB12")
    assert split_signature("a=1&b=2") == ("a=1&b=2", None)
    assert split_signature("") == ("", None)


def test_query_wins_over_body() -> None:
    assert merged_params("symbol=A&x=1", "symbol=B&y=2") == {"symbol": "A", "x": "1", "y": "2"}


@pytest.mark.parametrize(
    ("offset_ms", "window", "accepted"),
    [
        (0, None, True),
        (-5000, None, True),  # default recvWindow 5000: exactly at the edge
        (-5001, None, False),
        (999, None, True),  # up to 1 s ahead of the server
        (1000, None, False),
        (-60000, "60000", True),
        (-60001, "60000", False),
        (-10000, "10000.5", True),
    ],
)
def test_timing_window(offset_ms: int, window: str | None, accepted: bool) -> None:
    stamp = str(NOW_MS + offset_ms)
    if accepted:
        check_timestamp(stamp, window, NOW_MS)
    else:
        with pytest.raises(BinanceError) as caught:
            check_timestamp(stamp, window, NOW_MS)
        assert caught.value.code == -1021


def test_microsecond_timestamps() -> None:
    check_timestamp(str(NOW_MS * 1000 - 4_000_000), None, NOW_MS)
    with pytest.raises(BinanceError):
        check_timestamp(str(NOW_MS * 1000 - 6_000_000), None, NOW_MS)


@pytest.mark.parametrize("window", ["60001", "0", "-1", "abc", "1.0001"])
def test_bad_recv_window(window: str) -> None:
    with pytest.raises(BinanceError) as caught:
        check_timestamp(str(NOW_MS), window, NOW_MS)
    assert caught.value.code == -1131


@pytest.mark.parametrize("stamp", [None, "", "12a", "1.5"])
def test_missing_or_malformed_timestamp(stamp: str | None) -> None:
    with pytest.raises(BinanceError) as caught:
        check_timestamp(stamp, None, NOW_MS)
    assert caught.value.code == -1102


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[AuthManager]:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    manager = AuthManager(url, master_key=bytes(range(32)), scrypt_params=ScryptParams(2**4, 1, 1))
    yield manager
    manager.close()


def test_verify_with_a_manticore_key(auth: AuthManager) -> None:
    user = auth.create_user("carol")
    key = auth.create_api_key(user.user_id)
    payload = f"symbol=BTCUSD&timestamp={NOW_MS}"
    signature = hmac.new(key["api_secret"].encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert verify(auth, key["api_key"], payload, signature, str(NOW_MS), None, NOW_MS).user_id == user.user_id
    # case-insensitive hex, and no replay record: the same request twice is accepted (as on Binance)
    assert verify(auth, key["api_key"], payload, signature.upper(), str(NOW_MS), None, NOW_MS) == user

    cases = [
        (key["api_key"], payload + "x", signature, -1022),
        (key["api_key"], payload, "zz", -1022),
        ("unknown-key", payload, signature, -2015),
        ("", payload, signature, -2014),
        ("bad key!", payload, signature, -2014),
        (key["api_key"], payload, "", -1102),
    ]
    for api_key, signed_payload, sent, code in cases:
        with pytest.raises(BinanceError) as caught:
            verify(auth, api_key, signed_payload, sent, str(NOW_MS), None, NOW_MS)
        assert caught.value.code == code, (api_key, sent)

    auth.revoke_api_key(key["api_key"])
    with pytest.raises(BinanceError) as caught:
        verify(auth, key["api_key"], payload, signature, str(NOW_MS), None, NOW_MS)
    assert (caught.value.code, caught.value.status) == (-2015, 401)
