"""``signed_path``: the path and query a signature covers, as ``request.url`` gives them, also when the
answer comes from its cache of recently seen (path, query string) pairs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from manticore_api import security

_PATH_CHARS = st.sampled_from("abz09/-._~!$&'()*+,;=:@%?# é\x7f")


def _request(path: str, query: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8000")],
    }
    return Request(scope)


def _from_url(request: Request) -> str:
    url = request.url
    return url.path + ("?" + url.query if url.query else "")


@given(
    st.text(_PATH_CHARS, max_size=20).map(lambda text: "/" + text),
    st.text(_PATH_CHARS, max_size=20).map(lambda text: text.encode()),
)
def test_signed_path_is_the_urls_path_and_query_cold_and_cached(path: str, query: bytes) -> None:
    expected = _from_url(_request(path, query))
    assert security.signed_path(_request(path, query)) == expected
    assert security.signed_path(_request(path, query)) == expected  # again: from the cache if plain


def test_the_cache_stays_bounded() -> None:
    for n in range(security._MAX_SIGNED_PATHS * 2 + 5):
        assert security.signed_path(_request("/api/orders", f"n={n}".encode())) == f"/api/orders?n={n}"
    assert len(security._SIGNED_PATHS) <= security._MAX_SIGNED_PATHS
