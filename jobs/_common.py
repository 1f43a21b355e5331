"""The arguments every job takes: ``--out``, ``--smoke``, ``--config``, ``--address``."""

from __future__ import annotations

import argparse
from pathlib import Path


def job_parser(description: str, default_config: Path) -> argparse.ArgumentParser:
    """Arguments every job takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="output folder; results.json goes here")
    parser.add_argument("--smoke", action="store_true",
                        help="the same configuration shrunk to run in minutes on 2 CPUs")
    parser.add_argument("--config", default=str(default_config), help="YAML config")
    parser.add_argument("--address", default=None,
                        help="Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    return parser
