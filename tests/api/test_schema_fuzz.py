"""A bounded schemathesis pass over the OpenAPI schema of a real server: no request, however odd,
gets a 5xx, and every answer is documented in the schema.

``positive_data_acceptance`` is left out: the schema cannot say that a quantity must be positive and on
the market's lot grid, so a schema-valid order may rightly get a 400. Requests carry an admin session
token so that the authenticated endpoints are explored beyond the
401; ``DELETE /api/session`` is left out because it would end that session for the rest of the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from manticore_api.server import ADMIN_CREDENTIALS
from tests.api.support import Server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("fuzz") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin_token(live_server: Server) -> str:
    credentials = json.loads((live_server.data_dir / ADMIN_CREDENTIALS).read_text())
    login = httpx.post(
        f"{live_server.url}/api/session",
        json={"username": "admin", "password": credentials["password"]},
        timeout=10,
    )
    return str(login.json()["token"])


def test_no_request_gets_a_server_error(live_server: Server, admin_token: str) -> None:
    """Every operation, 20 generated cases each (schemathesis' own pytest plugin does not run on
    this pytest, so the operations are driven through their hypothesis strategies directly)."""
    api = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {admin_token}"}
    explored = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE" and operation.path == "/api/session":
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def explore(case: Any) -> None:
            case.call_and_validate(
                base_url=live_server.url, headers=headers, excluded_checks=[positive_data_acceptance]
            )

        explore()
        explored += 1
    assert explored >= 15
    metrics = httpx.get(f"{live_server.url}/metrics", timeout=10).text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("manticore_http_requests_total{")
    )
    assert served >= 10 * explored  # the cases really reached the server
