"""``signalworks listen``: the social sidecar (sources -> de-dup -> warehouse, spool on outage).

This module must not import Dagster or ``orchestration``: settings come from the environment
when :func:`main` runs (``SIGNALWORKS_HOME``, default ``./.signalworks``;
``SIGNALWORKS_DATABASE_URL``, default ``sqlite:///$SIGNALWORKS_HOME/warehouse.db``).
The spool defaults to ``$SIGNALWORKS_HOME/spool/social_events.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from resources.clock import StreamClock
from resources.social_config import SignalworksSocialConfig, load_social_config
from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.arrival import ArrivalPricer, arrival_pricer_from_env
from streaming.events import Event
from streaming.sink import SinkStats, WarehouseSink
from streaming.sources.base import Source, SourceHealth
from streaming.spool import Spool, SpoolLockedError
from streaming.supervisor import DEFAULT_BACKOFF, BackoffPolicy, Supervisor, install_signal_handlers

logger = logging.getLogger(__name__)

#: Seconds a PostgreSQL connection attempt may take before the sidecar spools instead.
CONNECT_TIMEOUT_S = 5


class ListenerConfigError(ValueError):
    """A source is enabled but cannot be built (missing credentials, missing module ...)."""


@dataclass(frozen=True)
class ListenerReport:
    """What a listener run did.

    Attributes
    ----------
    sources
        Final health per source name.
    sink
        The sink's counters.
    spool_pending
        Events left in the spool (flushed by the next run when the warehouse is back).
    stopped_by
        ``"stop"`` (signal or stop event) or ``"finished"`` (every finite source done).
    """

    sources: Mapping[str, SourceHealth]
    sink: SinkStats
    spool_pending: int
    stopped_by: str

    def summary(self) -> str:
        """One line: events received, written, dropped as duplicates, spooled."""
        s = self.sink
        return (f"listener stopped ({self.stopped_by}): received={s.received} written={s.written} "
                f"duplicates={s.duplicate_keys} reposts={s.reposts} spooled={s.spooled} "
                f"still_spooled={self.spool_pending} db_errors={s.db_errors}")


def with_connect_timeout(url: str, seconds: int = CONNECT_TIMEOUT_S) -> str:
    """``url`` with a PostgreSQL ``connect_timeout`` (unless it has one); others unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(seconds)}).render_as_string(hide_password=False)


def build_sources(
    config: SignalworksSocialConfig,
    *,
    home: Path,
    replay_path: Path | None = None,
    speed: float | None = None,
    replay_clock: StreamClock | None = None,
) -> list[Source]:
    """The enabled sources of ``config`` (replay, X, and Telegram/Discord when installed).

    ``replay_path`` and ``speed`` override the replay section (and enable it); ``replay_clock``
    re-bases the replay onto that clock and moves it with the stream (see
    :mod:`streaming.sources.replay`). Telegram and Discord are imported lazily, only when enabled.

    Raises
    ------
    ListenerConfigError
        An enabled source cannot be built; the message says what to fix.
    """
    from streaming.sources.replay import ReplaySource, default_stream_records
    from streaming.sources.x_webhook import XWebhookSource

    sources: list[Source] = []
    replay = config.sources.replay
    if replay_path is not None or replay.enabled:
        path = replay_path or replay.path
        options = dict(speed=speed or replay.speed, loop=replay.loop, channels=[c.id for c in replay.channels],
                       stream_clock=replay_clock)
        if path is not None:
            if not Path(path).exists():
                raise ListenerConfigError(f"replay stream {path} does not exist")
            sources.append(ReplaySource(Path(path), **options))
        else:
            sources.append(ReplaySource(records=default_stream_records(), **options))
    if config.sources.x.enabled:
        sources.append(XWebhookSource(config.sources.x))
    for platform in ("telegram", "discord"):
        section = getattr(config.sources, platform)
        if not section.enabled:
            continue
        try:
            module = __import__(f"streaming.sources.{platform}", fromlist=[f"build_{platform}_source"])
            factory = getattr(module, f"build_{platform}_source")
        except (ImportError, AttributeError) as error:
            raise ListenerConfigError(
                f"sources.{platform} is enabled but streaming.sources.{platform} cannot be loaded "
                f"({error}); install its client library or disable the source"
            ) from error
        try:
            sources.append(factory(section, home=home))
        except ValueError as error:
            raise ListenerConfigError(f"sources.{platform}: {error}") from error
    return sources


async def run_listener(
    config: SignalworksSocialConfig,
    *,
    warehouse_url: str,
    spool_path: Path,
    health_interval_s: float = 30.0,
    stop: asyncio.Event | None = None,
    extra_sources: Sequence[Source] = (),
    home: Path | None = None,
    replay_path: Path | None = None,
    speed: float | None = None,
    once: bool = False,
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    include_configured: bool = True,
    arrival: ArrivalPricer | None = None,
) -> ListenerReport:
    """Run the sidecar until ``stop`` is set (or, with ``once``, every finite source is done).

    Parameters
    ----------
    config
        ``config/sources.yaml``.
    warehouse_url
        Where ``social_events`` lives (a down warehouse is retried; events are spooled).
    spool_path
        The local spool file (its pending records are flushed first).
    health_interval_s
        Seconds between health lines (one per source, logged at INFO).
    stop
        Set it to stop (the CLI sets it on SIGTERM/SIGINT).
    extra_sources
        Sources added to the configured ones (tests, embedders).
    home
        Data home for session files (default: ``spool_path``'s grandparent).
    replay_path, speed
        Override the replay source.
    once
        Stop when every finite source (a replay without loop) is done.
    include_configured
        False to run only ``extra_sources``.
    arrival
        Prices each accepted call's tokens at once into the cache validation runs share
        (:mod:`streaming.arrival`); in its lockstep, before the next event is taken. Closed when
        the listener stops.

    Returns
    -------
    ListenerReport
        Sources are cancelled and awaited (clients closed) and the sink is flushed (to the
        warehouse, else to the spool) before this returns.
    """
    sources = list(extra_sources)
    if include_configured:
        home = home or spool_path.parent.parent
        sources = build_sources(config, home=home, replay_path=replay_path, speed=speed) + sources
    if not sources:
        raise ListenerConfigError("no source is enabled: enable one in config/sources.yaml or pass --replay")
    stop = stop or asyncio.Event()
    url = with_connect_timeout(warehouse_url)
    spool = Spool(spool_path)
    try:
        sink = WarehouseSink(lambda: SocialStore(make_engine(url)), spool)

        async def emit(event: Event) -> None:
            await sink.emit(event)
            if arrival is not None:
                await arrival.arrived(event)

        supervisor = Supervisor(sources, emit, backoff=backoff, health_interval_s=health_interval_s)
    except BaseException:
        spool.close()
        raise
    logger.info("listening to %s; warehouse %s; spool %s", ", ".join(s.name for s in sources),
                make_url(warehouse_url).render_as_string(hide_password=True), spool_path)
    await sink.start()
    if arrival is not None:
        await arrival.start()
    try:
        health = await supervisor.run(stop, until_finished=once)
    finally:
        await sink.close()
        if arrival is not None:
            await arrival.close()
            logger.info("arrival prices: %s", arrival.stats)
    stopped_by = "stop" if stop.is_set() else "finished"
    report = ListenerReport(sources=health, sink=dataclasses.replace(sink.stats),
                            spool_pending=sink.spool.pending, stopped_by=stopped_by)
    logger.info("%s", report.summary())
    return report


def _settings(environ: Mapping[str, str]) -> tuple[Path, str]:
    home = Path(environ.get("SIGNALWORKS_HOME") or "./.signalworks")
    url = environ.get("SIGNALWORKS_DATABASE_URL") or f"sqlite:///{(home / 'warehouse.db').resolve()}"
    return home, url


def main(argv: list[str] | None = None) -> int:
    """``signalworks listen``: run the sidecar until SIGTERM/SIGINT (exit 0) or, with ``--once``,
    until the replay is done. Exit 2 on a configuration error."""
    parser = argparse.ArgumentParser(prog="signalworks listen", description="Run the social sidecar.")
    parser.add_argument("--config", type=Path, default=Path("config/sources.yaml"),
                        help="sources file (missing: the embedded default, a synthetic replay)")
    parser.add_argument("--replay", type=Path, default=None, help="replay this JSONL stream")
    parser.add_argument("--speed", type=float, default=None, help="replay speed (60 = a minute per second)")
    parser.add_argument("--once", action="store_true", help="exit when finite sources (replay) are done")
    parser.add_argument("--spool", type=Path, default=None, help="spool file (default: $SIGNALWORKS_HOME/spool/...)")
    parser.add_argument("--health-interval", type=float, default=30.0, help="seconds between health lines")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home, url = _settings(os.environ)
    spool_path = args.spool or home / "spool" / "social_events.jsonl"
    try:
        config = load_social_config(args.config)
        arrival = arrival_pricer_from_env(os.environ, home)
    except ValueError as error:
        print(f"signalworks listen: invalid configuration: {error}")
        return 2

    async def _run() -> ListenerReport:
        stop = asyncio.Event()
        uninstall = install_signal_handlers(stop)
        try:
            return await run_listener(config, warehouse_url=url, spool_path=spool_path, home=home,
                                      health_interval_s=args.health_interval, stop=stop,
                                      replay_path=args.replay, speed=args.speed, once=args.once,
                                      arrival=arrival)
        finally:
            uninstall()

    try:
        report = asyncio.run(_run())
    except (ListenerConfigError, SpoolLockedError) as error:
        print(f"signalworks listen: {error}")
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
