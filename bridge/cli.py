"""The `lms-bridge` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bridge.config import Config, ConfigError, load_config, redact_database_url, render_example
from bridge.demo.synapse import port_is_free
from bridge.logs import setup_logging
from bridge.matrix.appservice import ping_only_application
from bridge.matrix.checks import run_checks
from bridge.matrix.client import HomeserverClient
from bridge.matrix.registration import ensure_secrets, write_registration

DEFAULT_CONFIG = "config.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `lms-bridge` and `python -m bridge`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lms-bridge", description="Matrix appservice bridge for an LMS Messages inbox."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, func: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-c",
            "--config",
            default=DEFAULT_CONFIG,
            type=Path,
            help=f"configuration file (default: {DEFAULT_CONFIG})",
        )

    with_config(command("run", "Run the bridge.", _cmd_run))
    with_config(command("migrate", "Bring the database schema up to date.", _cmd_migrate))
    sub = command(
        "generate-registration",
        "Write the appservice registration file for Synapse (creating missing tokens).",
        _cmd_generate_registration,
    )
    with_config(sub)
    sub.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write it (default: registration.yaml beside the config)",
    )
    with_config(command("doctor", "Check the wiring and say what is wrong.", _cmd_doctor))
    sub = command(
        "import-oneroster",
        "Import an IMS OneRoster 1.1 CSV export (orgs, users, courses, classes, enrollments).",
        _cmd_import_oneroster,
    )
    with_config(sub)
    sub.add_argument("folder", type=Path, help="the folder with the export's CSV files")
    sub = command(
        "failed",
        "List what the bridge set aside (events whose handling kept failing, messages the "
        "homeserver refused), or put it back in line.",
        _cmd_failed,
    )
    with_config(sub)
    sub.add_argument("action", choices=["list", "retry"], help="list, or retry")
    sub.add_argument(
        "--event", type=int, action="append", default=[], metavar="SEQ", help="an event to retry"
    )
    sub.add_argument(
        "--message", action="append", default=[], metavar="ID", help="a message to retry"
    )
    sub.add_argument("--all", action="store_true", help="retry everything set aside")
    command("example-config", "Print the commented example configuration.", _cmd_example)
    sub = command(
        "demo",
        "Run a throwaway Synapse and the bridge with sample accounts, for trying things out.",
        _cmd_demo,
    )
    sub.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep configs, databases and logs here and reuse them next time "
        "(default: a temporary folder removed on exit)",
    )
    return parser


def _cmd_example(_args: argparse.Namespace) -> int:
    sys.stdout.write(render_example())
    return 0


def _cmd_generate_registration(args: argparse.Namespace) -> int:
    config, generated = ensure_secrets(args.config)
    if generated:
        print(f"generated {', '.join(generated)} and saved them in {args.config}")
    output = args.output or args.config.parent / "registration.yaml"
    write_registration(config, output)
    print(f"wrote {output}: list it in Synapse's app_service_config_files and restart Synapse")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from bridge.store import migrate
    from bridge.store.database import Database

    config = load_config(args.config)

    async def run() -> tuple[str | None, str]:
        db = Database(config.database_url())
        try:
            return await migrate.upgrade(db)
        finally:
            await db.close()

    try:
        before, after = asyncio.run(run())
    except migrate.SchemaTooNew as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"database schema at {after}" + ("" if before == after else f" (was {before or 'empty'})")
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.logging)
    return asyncio.run(_run(config))


async def _run(config: Config) -> int:
    import logging

    from bridge.app import Bridge, StartupError

    log = logging.getLogger("bridge")
    try:
        bridge = Bridge(config)
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bridge.start()
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        await bridge.stop()
        return 1
    await stop.wait()
    log.info("stopping")
    await bridge.stop()
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_doctor(config))


async def _doctor(config: Config) -> int:
    from bridge.config import missing_secrets
    from bridge.store import migrate
    from bridge.store.database import Database

    failed = False

    def report(ok: bool, name: str, message: str) -> None:
        nonlocal failed
        failed = failed or not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {message}")

    missing = missing_secrets(config)
    if missing:
        report(
            False, "tokens", f"{', '.join(missing)} not set: run `lms-bridge generate-registration`"
        )
        return 1
    db = Database(config.database_url())
    try:
        current = await migrate.current_revision(db)
        head = migrate.head_revision()
        if current is None:
            report(True, "database", "reachable and empty (the bridge migrates it at start)")
        elif current == head:
            report(True, "database", f"reachable, schema at {current}")
        else:
            try:
                await migrate.check_known(db)
                report(True, "database", f"reachable, schema {current} (will migrate to {head})")
            except migrate.SchemaTooNew as exc:
                report(False, "database", str(exc))
    except Exception as exc:
        report(False, "database", f"cannot use {redact_database_url(config.database.url)}: {exc}")
    finally:
        await db.close()

    client = HomeserverClient(
        config.homeserver.url, config.appservice.as_token, config.appservice.id, 15
    )
    await client.start()
    listener = await _temporary_ping_listener(config)
    try:
        for result in await run_checks(client, config):
            report(result.ok, result.name, result.message)
    finally:
        await client.close()
        if listener is not None:
            await listener.cleanup()
    return 1 if failed else 0


async def _temporary_ping_listener(config: Config) -> web.AppRunner | None:
    """When the bridge isn't running, answer the homeserver's ping ourselves."""
    asc = config.appservice
    if not port_is_free(asc.listen_port, asc.listen_host):
        return None  # the running bridge answers
    runner = web.AppRunner(ping_only_application(asc.hs_token), access_log=None)
    await runner.setup()
    with contextlib.suppress(OSError):
        await web.TCPSite(runner, asc.listen_host, asc.listen_port).start()
        return runner
    await runner.cleanup()
    return None


def _cmd_failed(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "retry" and not (args.all or args.event or args.message):
        print("retry what? name --event SEQ, --message ID, or --all", file=sys.stderr)
        return 2
    return asyncio.run(_failed(config, args))


async def _failed(config: Config, args: argparse.Namespace) -> int:
    from bridge.services.parked import ParkedWork
    from bridge.store.database import Database

    db = Database(config.database_url())
    try:
        parked = ParkedWork(db)
        if args.action == "retry":
            events, messages = await parked.retry(
                None if args.all else args.event, None if args.all else args.message
            )
            print(f"put back in line: {events} event(s), {messages} message(s)")
            return 0
        found = await parked.list()
        print(f"events set aside: {len(found.events)}")
        for event in found.events:
            print(
                f"  --event {event.seq}  {event.event_type} {event.event_id or '-'} in "
                f"{event.room_id or '-'} after {event.attempts} attempt(s): {event.last_error}"
            )
        print(f"messages refused by the homeserver: {len(found.messages)}")
        for message in found.messages:
            print(
                f"  --message {message.id}  from {message.sender} in conversation "
                f"{message.conversation_id}, {message.created_at:%Y-%m-%d %H:%M} UTC"
            )
        return 0
    finally:
        await db.close()


def _cmd_import_oneroster(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_import_oneroster(config, args.folder))


async def _import_oneroster(config: Config, folder: Path) -> int:
    from bridge.importers.oneroster import ImportFailed, import_folder

    try:
        report = await import_folder(config.database_url(), folder)
    except ImportFailed as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bridge.demo.runner import run_demo

    return run_demo(args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
