"""The ``manticore`` command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from manticore_api.cli import main


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
