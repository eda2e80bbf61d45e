"""Command line: run, check, validate-config, preflight, create.

Exit codes: 0 fine; 1 unhealthy (check), not ready (preflight, create) or
crashed; 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import structlog

from monitor import __version__
from monitor.cli.exits import Exit
from monitor.config import Config, ConfigError, load_config, web_settings
from monitor.config.models import LogFormat, LogLevel
from monitor.launchdarkly.sharding import Shard
from monitor.log import Redactor, configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ld-store-monitor",
        description="Watch LaunchDarkly big segment stores; export Prometheus metrics.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, *, config_required: bool = True) -> None:
        p.add_argument(
            "--config",
            type=Path,
            required=config_required,
            help="YAML configuration file",
        )
        p.add_argument(
            "--log-format",
            choices=get_args(LogFormat),
            help="override logging.format",
        )
        p.add_argument(
            "--log-level",
            choices=get_args(LogLevel),
            help="override logging.level",
        )

    run = sub.add_parser("run", help="run the daemon")
    common(run)
    run.add_argument("--listen", metavar="HOST:PORT", help="override server.listen")
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="FILE",
        help="TLS and basic auth in the Prometheus exporter-toolkit format "
        "(override server.web_config_file)",
    )
    run.add_argument(
        "--shard",
        metavar="I/N",
        help="keep only shard I of N (stable hash of integration_id)",
    )

    check = sub.add_parser("check", help="one discovery and probe round; exit 0/1/2")
    common(check)
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.add_argument("--shard", metavar="I/N", help="keep only shard I of N")

    from monitor.cli.create import add_create_options  # noqa: PLC0415 -- light
    from monitor.cli.preflight import add_store_options  # noqa: PLC0415 -- light

    preflight = sub.add_parser(
        "preflight",
        help="is a store ready for a big segment integration? exit 0/1/2",
    )
    add_store_options(preflight)
    create = sub.add_parser(
        "create",
        help="preflight, then create the integration through the API (--apply)",
    )
    add_store_options(create)
    add_create_options(create)
    for p in (preflight, create):
        p.add_argument("--log-format", choices=get_args(LogFormat))
        p.add_argument("--log-level", choices=get_args(LogLevel))

    validate = sub.add_parser(
        "validate-config", help="check a configuration file and exit"
    )
    validate.add_argument(
        "--config", type=Path, required=True, help="YAML configuration file"
    )

    return parser


def _load(
    path: Path,
    redactor: Redactor | None = None,
    *,
    web: bool = False,
    web_config_file: Path | None = None,
) -> Config:
    """The config at `path`, its secrets masked from here on; exit 2 if invalid.

    With `web`, the web config (`web_config_file`, else the config's
    `server.web_config_file`) must be valid too.
    """
    try:
        config = load_config(path)
        if web:
            web_settings(config, web_config_file)
    except ConfigError as err:
        print(f"{path}: invalid configuration", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(Exit.BAD_INPUT) from None
    if redactor is not None:
        redactor.update(config.secrets())
    return config


def _shard(args: argparse.Namespace) -> Shard | None:
    """--shard I/N, or exit 2 with a readable message."""
    try:
        return Shard.parse(args.shard) if args.shard else None
    except ValueError as err:
        print(f"--shard: {err}", file=sys.stderr)
        raise SystemExit(Exit.BAD_INPUT) from None


def _warn(config: Config) -> list[str]:
    """Print each risky choice of `config` to stderr; returns them."""
    from monitor.config.hygiene import config_warnings  # noqa: PLC0415 -- light import

    warnings = config_warnings(config)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return warnings


def _validate(args: argparse.Namespace) -> int:
    config = _load(args.config, web=True)
    _warn(config)
    print(
        f"{args.config}: OK (api {'on' if config.api.enabled else 'off'}, "
        f"{len(config.credentials)} credential entries, "
        f"{len(config.targets)} static targets)"
    )
    return Exit.OK


def _run(args: argparse.Namespace, redactor: Redactor) -> int:
    from monitor.daemon import run_daemon  # noqa: PLC0415 -- keeps validate-config fast and light

    config = _load(
        args.config, redactor, web=True, web_config_file=args.web_config_file
    )

    def configure(current: Config) -> None:
        fmt = args.log_format or current.logging.format
        configure_logging(
            redactor, fmt=fmt, level=args.log_level or current.logging.level
        )

    configure(config)
    from monitor.config.hygiene import config_warnings  # noqa: PLC0415 -- light import

    for warning in config_warnings(config):
        structlog.stdlib.get_logger("monitor").warning(
            "config.warning", warning=warning
        )
    shard = _shard(args)
    code: int = asyncio.run(
        run_daemon(
            config,
            redactor,
            config_path=args.config,
            listen=args.listen,
            shard=shard,
            on_reload=configure,
            web_config_file=args.web_config_file,
        )
    )
    return code


def _check(args: argparse.Namespace, redactor: Redactor) -> int:
    from monitor.cli.check import run_check  # noqa: PLC0415 -- keeps validate-config light

    config = _load(args.config, redactor)
    _warn(config)
    # Logs go to stderr at warning level so that stdout holds only the result.
    configure_logging(
        redactor, fmt=args.log_format or "console", level=args.log_level or "warning"
    )
    shard = _shard(args)
    code: int = asyncio.run(
        run_check(
            config,
            redactor,
            fmt=args.format,
            out=sys.stdout,
            err=sys.stderr,
            shard=shard,
        )
    )
    return code


def _onboard(args: argparse.Namespace, redactor: Redactor) -> int:
    """`preflight` and `create`: one-shot commands beside `check`, never the daemon."""
    from monitor.cli.create import create_command  # noqa: PLC0415 -- keeps validate-config light
    from monitor.cli.preflight import preflight_command  # noqa: PLC0415

    config = _load(args.config, redactor)
    configure_logging(
        redactor, fmt=args.log_format or "console", level=args.log_level or "error"
    )
    command = create_command if args.command == "create" else preflight_command
    code: int = asyncio.run(
        command(args, config, redactor, out=sys.stdout, err=sys.stderr)
    )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ld-store-monitor` command."""
    args = _parser().parse_args(argv)
    redactor = Redactor()
    commands: dict[str, Callable[[], int]] = {
        "validate-config": lambda: _validate(args),
        "run": lambda: _run(args, redactor),
        "check": lambda: _check(args, redactor),
        "preflight": lambda: _onboard(args, redactor),
        "create": lambda: _onboard(args, redactor),
    }
    try:
        return commands[args.command]()  # argparse requires one of them
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 -- last resort: report redacted, never a raw traceback
        text = "".join(traceback.format_exception(err))
        structlog.stdlib.get_logger("monitor").critical(
            "daemon.crashed", error=redactor.text(repr(err))
        )
        print(redactor.text(text), file=sys.stderr)
        return Exit.UNHEALTHY
