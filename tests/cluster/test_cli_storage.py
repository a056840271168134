"""The CLI of snapshots, retention and the storage writer: options and refusals (no NATS needed)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from manticore_api.cli import main


def test_storage_writer_help_names_its_options() -> None:
    result = CliRunner().invoke(main, ["storage-writer", "--help"])
    assert result.exit_code == 0
    for option in (
        "--nats",
        "--shard",
        "--database-url",
        "--data-dir",
        "--replicas",
        "--name",
        "--snapshots",
    ):
        assert option in result.output


def test_shard_help_names_the_snapshot_options() -> None:
    result = CliRunner().invoke(main, ["shard", "--help"])
    assert result.exit_code == 0
    for option in ("--checkpoint-every", "--snapshots-keep", "--log-retention"):
        assert option in result.output


def test_retention_without_snapshots_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "shard",
            "--nats",
            "nats://127.0.0.1:1",
            "--data-dir",
            str(tmp_path / "d"),
            "--snapshots-keep",
            "0",
            "--log-retention",
        ],
    )
    assert result.exit_code == 2
    assert "log retention needs snapshots" in result.output
    assert not (tmp_path / "d").exists()


def test_a_bad_follower_name_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "storage-writer",
            "--nats",
            "nats://127.0.0.1:1",
            "--database-url",
            f"sqlite:///{tmp_path / 'r.db'}",
            "--data-dir",
            str(tmp_path / "w"),
            "--name",
            "no spaces",
        ],
    )
    assert result.exit_code == 2
    assert "follower name 'no spaces'" in result.output
    assert not (tmp_path / "w").exists()


def test_retention_on_an_account_shard_is_refused(tmp_path: Path) -> None:
    """An account shard's checkpoints are not published as snapshots, so its log cannot be purged."""
    result = CliRunner().invoke(
        main,
        [
            "shard",
            "--nats",
            "nats://127.0.0.1:1",
            "--data-dir",
            str(tmp_path / "d"),
            "--role",
            "account",
            "--market-shard",
            "m1=BTC/USD",
            "--log-retention",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "not for an account shard" in result.output
    assert not (tmp_path / "d").exists()
