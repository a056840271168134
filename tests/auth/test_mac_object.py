"""The keyed HMAC object of :func:`manticore_auth.signing.mac_for_secret` (OpenSSL's own where there is
one) gives the standard library's HMAC-SHA256, and is left unchanged by every use."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manticore_auth import signing
from manticore_auth.signing import digest_of, mac_for_secret, signature_of

_SECRETS = st.text(min_size=1, max_size=100) | st.binary(max_size=200)


@given(secret=_SECRETS, messages=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_digests_are_the_standard_hmac(secret: str | bytes, messages: list[bytes]) -> None:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    mac = mac_for_secret(secret)
    for message in messages:
        expected = hmac.new(key, message, hashlib.sha256).digest()
        assert digest_of(mac, message) == expected
        assert signature_of(mac, message) == expected.hex()


def test_without_openssls_object_the_standard_hmac_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "_openssl_hmac", None)
    mac = mac_for_secret("secret")
    assert isinstance(mac, hmac.HMAC)
    assert digest_of(mac, b"m") == hmac.new(b"secret", b"m", hashlib.sha256).digest()


def test_openssls_object_is_used_when_there_is_one() -> None:
    if signing._openssl_hmac is None:  # pragma: no cover - CPython without OpenSSL
        pytest.skip("no OpenSSL HMAC in this Python")
    assert not isinstance(mac_for_secret("secret"), hmac.HMAC)
