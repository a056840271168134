"""Names and idempotent set-up of the stream and bucket."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from manticore_cluster.natsconf import ClusterConfigError, NatsOptions, connect, ensure_log_stream


def test_names_follow_the_prefix() -> None:
    options = NatsOptions(prefix="mc")
    assert options.log_stream == "MC_LOG"
    assert options.log_subjects == "mc.log.*"
    assert options.log_subject("main") == "mc.log.main"
    assert options.lease_bucket == "mc_leases"


@pytest.mark.parametrize("prefix", ["", "MC", "1mc", "mc.x", "mc-x", "m" * 33])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ClusterConfigError):
        NatsOptions(prefix=prefix)


@pytest.mark.parametrize("shard", ["", "a.b", "a*", "a>", "a b", "x" * 65])
def test_bad_shard_names_are_refused(shard: str) -> None:
    with pytest.raises(ClusterConfigError):
        NatsOptions().log_subject(shard)


@pytest.mark.parametrize(
    "change", [{"replicas": 0}, {"duplicate_window": 0.5}, {"max_age": -1.0}, {"servers": ()}]
)
def test_bad_options_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ClusterConfigError):
        NatsOptions(**change)  # type: ignore[arg-type]


def test_the_stream_is_created_once_and_checked(nats_options: NatsOptions) -> None:
    async def main() -> None:
        nc = await connect(nats_options)
        try:
            js = nc.jetstream()
            await ensure_log_stream(js, nats_options)
            await ensure_log_stream(js, nats_options)  # idempotent
            info = await js.stream_info(nats_options.log_stream)
            assert info.config.subjects == [nats_options.log_subjects]
            assert info.config.duplicate_window == nats_options.duplicate_window
            other = dataclasses.replace(nats_options, duplicate_window=30.0)
            with pytest.raises(ClusterConfigError, match="duplicate_window"):
                await ensure_log_stream(js, other)
            assert (await js.stream_info(nats_options.log_stream)).config.duplicate_window == 120.0
        finally:
            await nc.close()

    asyncio.run(main())


def test_the_embedded_server_does_not_import_nats(tmp_path: object) -> None:
    """Embedded mode needs no NATS: neither the server's modules nor an exchange on its file journal
    (nor importing manticore_cluster itself) import the client."""
    import subprocess
    import sys

    code = (
        "import sys, tempfile\n"
        "import manticore_api.cli, manticore_cluster, manticore_cluster.log, manticore_cluster.lease\n"
        "from manticore_matching import Exchange\n"
        "with Exchange(tempfile.mkdtemp()) as exchange:\n"
        "    exchange.deposit('alice', 'USD', '1')\n"
        "assert not [m for m in sys.modules if m == 'nats' or m.startswith('nats.')], 'nats imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
