"""The arguments every job takes: ``--out``, ``--smoke``, ``--config``, ``--address``."""

from __future__ import annotations

import argparse
from pathlib import Path


class JobParser(argparse.ArgumentParser):
    """The job's parser; parsing also sets where Ray's logs go (``--verbose`` or a file)."""

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201, D102
        parsed = super().parse_args(args, namespace)
        from astroray.runtime import configure_console

        configure_console(verbose=parsed.verbose,
                          log_file=Path(parsed.out) / "logs" / "ray.log")
        return parsed


def job_parser(description: str, default_config: Path) -> argparse.ArgumentParser:
    """Arguments every job takes."""
    parser = JobParser(description=description)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Ray's own logs on the terminal (default: OUT/logs/ray.log)")
    parser.add_argument("--out", required=True, help="output folder; results.json goes here")
    parser.add_argument("--smoke", action="store_true",
                        help="the same configuration shrunk to run in minutes on 2 CPUs")
    parser.add_argument("--config", default=str(default_config), help="YAML config")
    parser.add_argument("--address", default=None,
                        help="Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    return parser


def load_job_config(args: argparse.Namespace, config_cls: type, *,
                    paths: list[str] | None = None,
                    after_smoke: dict[str, object] | None = None,
                    **overrides: object) -> object:
    """The job's configuration, and INFO logging of ``astroray``.

    ``--config``; then ``paths`` (when given, they replace the config's inputs: its
    ``optional_paths`` and ``synthetic`` survey are dropped); then the overrides given (those
    not None); then shrunk by ``--smoke``; then ``after_smoke`` (those not None: explicit
    command-line values that the shrinking must not undo, such as ``--epochs``).
    """
    import logging

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("astroray").setLevel(logging.INFO)
    config = config_cls.from_file(args.config)
    if paths:
        inputs: dict[str, object] = {"paths": tuple(paths)}
        for name, empty in (("optional_paths", ()), ("synthetic", None)):
            if hasattr(config, name):
                inputs[name] = empty
        config = config.replace(**inputs)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        config = config.replace(**changes)
    if args.smoke:
        config = config.smoke()
    final = {k: v for k, v in (after_smoke or {}).items() if v is not None}
    return config.replace(**final) if final else config
