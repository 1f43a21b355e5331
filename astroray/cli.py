"""The ``astroray`` command: ``ingest``, ``render``, ``demo``, ``formats``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

logger = logging.getLogger("astroray")


def _add_ray_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Ray")
    group.add_argument("--address", default=None,
                       help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    group.add_argument("--num-cpus", type=int, default=None,
                       help="CPUs of a new local Ray (default: all)")


def _cmd_formats(args: argparse.Namespace) -> int:
    from astroray.data.registry import get_reader, list_formats

    for name in list_formats():
        spec = get_reader(name)
        print(f"{name:10s} {'/'.join(spec.kinds):28s} {spec.description}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from astroray.config import IngestConfig
    from astroray.data.ingest import ingest, prepare_inputs
    from astroray.runtime import init_ray

    config = IngestConfig.from_file(args.config) if args.config else None
    overrides = {k: v for k, v in {
        "paths": tuple(args.paths) or None, "format": args.format,
        "labels": tuple(args.labels) or None, "survey": args.survey,
    }.items() if v is not None}
    config = config.replace(**overrides) if config else IngestConfig(**overrides)
    config = prepare_inputs(config, os.path.join(args.out, "input"))
    init_ray(args.address, num_cpus=args.num_cpus)
    summary = ingest(config, args.out)
    print(summary.line())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from astroray.demo import DemoConfig, run_demo
    from astroray.runtime import init_ray

    config = DemoConfig.from_file(args.config) if args.config else DemoConfig()
    if args.real is not None:
        config = config.replace(real=args.real)
    if args.smoke:
        config = config.smoke()
    init_ray(args.address, num_cpus=args.num_cpus)
    run_demo(config, args.out, smoke=args.smoke)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from astroray.data.ingest import IngestError, primary_kind
    from astroray.data.registry import plan_read, read_files
    from astroray.render import render_files_to_png

    plan = plan_read(args.paths, format=args.format, labels=args.labels or None)
    kind = primary_kind(plan)
    if kind not in ("lightcurve", "spectrum"):
        raise IngestError(f"astroray render draws light curves and spectra, not {kind}s")
    table, errors = read_files(args.paths, format=args.format, kind=kind,
                               labels=args.labels or None)
    written = render_files_to_png(table, kind, args.out, limit=args.limit)
    print(f"render: {len(written)} {kind} PNG(s) -> {args.out}"
          + (f"; {errors.num_rows} object(s) could not be read" if errors.num_rows else ""))
    for row in errors.to_pylist()[:5]:
        print(f"  {row['error']}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``astroray`` command."""
    parser = argparse.ArgumentParser(
        prog="astroray", description="Survey-scale astronomy machine learning on Ray.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("formats", help="list the survey formats astroray reads")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("ingest", help="read survey files into a canonical Parquet dataset")
    p.add_argument("paths", nargs="*", help="files or folders (recursive); local or URIs")
    p.add_argument("--out", required=True, help="output folder (data/, errors/, stamps/)")
    p.add_argument("--format", default=None, help="reader for every file (default: sniff)")
    p.add_argument("--labels", action="append", default=[],
                   help="label table to join by object id (repeatable)")
    p.add_argument("--survey", default=None, help="override the survey name")
    p.add_argument("--config", default=None, help="YAML/JSON IngestConfig")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("render", help="draw light curves or spectra as the papers' images (PNG)")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--format", default=None, help="reader for every file (default: sniff)")
    p.add_argument("--labels", action="append", default=[], help="label table (repeatable)")
    p.add_argument("--limit", type=int, default=16, help="render the first N objects (16)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("demo", help="synthetic survey + real samples -> ingest -> summary")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--real", default=None,
                   help="folder of real samples (default: ../shared/data/real when present; "
                        "'' for none)")
    p.add_argument("--config", default=None, help="YAML/JSON DemoConfig")
    p.add_argument("--smoke", action="store_true", help="a much smaller synthetic survey")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astroray`` command; returns the exit status."""
    from astroray.config import ConfigError
    from astroray.data.ingest import IngestError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ConfigError, IngestError, FileNotFoundError) as exc:
        print(f"astroray {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
