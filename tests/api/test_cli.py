"""The ``manticore`` command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from manticore_api.cli import main
from manticore_api.server import ADMIN_CREDENTIALS, SERVER_FILE
from manticore_matching import DataDirectoryLock
from tests.api.support import Server, SignedClient, free_port


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output


def test_serve_refuses_no_auth_on_a_public_address(tmp_path: Path) -> None:
    arguments = ["serve", "--no-auth", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert "refusing to serve without authentication" in result.output
    assert not any(tmp_path.iterdir())  # nothing was started or written


def test_serve_reports_a_bad_market_file(tmp_path: Path) -> None:
    config = tmp_path / "markets.toml"
    config.write_text('[[markets]]\nsymbol = "BTC/USD"\nbase_asset = "BTC"\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "missing market fields" in result.output


# ---------------------------------------------------------------------- --version


def test_version_names_the_order_book_build() -> None:
    import manticore_orderbook

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    build = "compiled with mypyc" if getattr(manticore_orderbook, "COMPILED", False) else "pure Python"
    assert result.output == f"manticore 0.1.0 (order book: {build})\n"


# ---------------------------------------------------------------------- admin commands


def run(*arguments: str, data_dir: Path, input: str | None = None) -> dict[str, Any]:
    """Run an admin command with --json on ``data_dir``; its parsed output (asserting success)."""
    result = CliRunner().invoke(main, [*arguments, "--data-dir", str(data_dir), "--json"], input=input)
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.output[result.output.index("{") :])
    return answer


def fails(*arguments: str, data_dir: Path) -> str:
    result = CliRunner().invoke(main, [*arguments, "--data-dir", str(data_dir)])
    assert result.exit_code == 1, result.output
    return result.output


def balances(http: httpx.Client, key: dict[str, Any]) -> dict[str, Any]:
    response = SignedClient(http, key["api_key"], key["api_secret"]).get("/api/balances")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["balances"]
    return found


def test_admin_commands_offline_then_through_the_server_then_offline_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert "no data directory" in fails("markets", data_dir=data_dir)
    data_dir.mkdir()

    # Offline: nothing runs on the directory.
    carol = run("user", "add", "carol", data_dir=data_dir)
    assert carol["username"] == "carol" and carol["role"] == "trader"
    assert carol["user_id"].startswith("u_") and carol["api_key"].startswith("mk_")
    assert len(carol["password"]) >= 16
    assert (data_dir / ADMIN_CREDENTIALS).exists()  # the first admin exists, as a server start makes it
    deposited = run("deposit", "carol", "USD", "1000.25", data_dir=data_dir)
    assert deposited["balances"]["USD"] == {"available": "1000.25", "held": "0"}
    run("deposit", carol["user_id"], "BTC", "2", data_dir=data_dir)  # by id
    second_key = run("api-key", "create", "carol", data_dir=data_dir)
    assert second_key["user_id"] == carol["user_id"] and second_key["api_key"] != carol["api_key"]
    dave = run("user", "add", "dave", "--password", data_dir=data_dir, input="dave-password\ndave-password\n")
    assert "password" not in dave
    assert run("markets", data_dir=data_dir) == {"markets": []}  # none until a server creates them
    assert "taken" in fails("user", "add", "carol", data_dir=data_dir)
    assert "no user is named 'nobody'" in fails("deposit", "nobody", "USD", "1", data_dir=data_dir)
    assert "must be positive" in fails("deposit", "carol", "USD", "0", data_dir=data_dir)
    assert not (data_dir / SERVER_FILE).exists()

    server = Server(data_dir)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # Everything done offline is there.
            expected = {"USD": {"available": "1000.25", "held": "0"}, "BTC": {"available": "2", "held": "0"}}
            assert balances(http, carol) == expected
            assert balances(http, second_key) == expected
            login = http.post("/api/session", json={"username": "dave", "password": "dave-password"})
            assert login.status_code == 200, login.text
            login = http.post("/api/session", json={"username": "carol", "password": carol["password"]})
            assert login.status_code == 200, login.text

            # Online: the same commands go through the server that holds the directory.
            assert json.loads((data_dir / SERVER_FILE).read_text())["url"] == server.url
            listed = run("markets", data_dir=data_dir)["markets"]
            assert [m["symbol"] for m in listed] == ["BTC/USD", "ETH/USD", "ETH/BTC"]
            assert listed == http.get("/api/markets").json()["markets"]
            table = CliRunner().invoke(main, ["markets", "--data-dir", str(data_dir)]).output.splitlines()
            assert table[0] == "symbol   base  quote  tick size  lot size  maker fee  taker fee"
            assert table[1].split() == ["BTC/USD", "BTC", "USD", "0.01", "0.00001", "0.001", "0.002"]
            erin = run("user", "add", "erin", data_dir=data_dir)
            run("deposit", "erin", "USD", "50", data_dir=data_dir)
            assert balances(http, erin) == {"USD": {"available": "50", "held": "0"}}
            erin_key = run("api-key", "create", erin["user_id"], data_dir=data_dir)
            assert balances(http, erin_key) == {"USD": {"available": "50", "held": "0"}}
            run("deposit", "carol", "USD", "0.75", data_dir=data_dir)
            assert "taken" in fails("user", "add", "erin", data_dir=data_dir)
            assert "no user is named" in fails("api-key", "create", "nobody", data_dir=data_dir)
    finally:
        server.stop()
    assert not (data_dir / SERVER_FILE).exists()  # removed at a clean shutdown

    # Offline again: the server's checkpoint and the online changes are all there.
    assert run("deposit", "erin", "BTC", "1", data_dir=data_dir)["balances"] == {
        "USD": {"available": "50", "held": "0"},
        "BTC": {"available": "1", "held": "0"},
    }
    assert run("deposit", "carol", "USD", "1", data_dir=data_dir)["balances"]["USD"]["available"] == "1002"
    assert len(run("markets", data_dir=data_dir)["markets"]) == 3


def test_admin_commands_refuse_a_directory_held_without_an_address(tmp_path: Path) -> None:
    with DataDirectoryLock.acquire(tmp_path):  # e.g. another admin command, or a server still starting
        output = fails("markets", data_dir=tmp_path)
    assert f"in use by process {os.getpid()}" in output
    assert "pass --url" in output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["LOCK"]


def test_admin_commands_take_a_url(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir)
    server.start()
    try:
        listed = run("markets", "--url", server.url, data_dir=data_dir)["markets"]
        assert len(listed) == 3
        unreachable = f"http://127.0.0.1:{free_port()}"
        assert "cannot reach the server" in fails("markets", "--url", unreachable, data_dir=data_dir)
    finally:
        server.stop()
