"""The ``astroray`` command: ingest, render, pretrain, embed, infer, report, demo, formats."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
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
    from astroray.data.registry import get_reader, list_formats  # lazy: CLI start-up

    for name in list_formats():
        spec = get_reader(name)
        print(f"{name:10s} {'/'.join(spec.kinds):28s} {spec.description}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from astroray.data.ingest import IngestConfig, ingest, prepare_inputs  # lazy: CLI start-up
    from astroray.runtime import init_ray  # lazy: CLI start-up

    config = IngestConfig.from_file(args.config) if args.config else None
    overrides = {k: v for k, v in {
        "paths": tuple(args.paths) or None, "format": args.format,
        "labels": tuple(args.labels) or None, "survey": args.survey,
        "overwrite": args.overwrite or None,
    }.items() if v is not None}
    config = config.replace(**overrides) if config else IngestConfig(**overrides)
    config = prepare_inputs(config, os.path.join(args.out, "input"))
    init_ray(args.address, num_cpus=args.num_cpus)
    summary = ingest(config, args.out)
    print(summary.line())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from astroray.demo import DemoConfig, run_demo  # lazy: CLI start-up
    from astroray.runtime import init_ray  # lazy: CLI start-up

    config = DemoConfig.from_file(args.config) if args.config else DemoConfig()
    if args.real is not None:
        config = config.replace(real=args.real)
    if args.smoke:
        config = config.smoke()
    init_ray(args.address, num_cpus=args.num_cpus)
    run_demo(config, args.out, smoke=args.smoke)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from astroray.data.ingest import IngestError, primary_kind  # lazy: CLI start-up
    from astroray.data.registry import plan_read, read_files  # lazy: CLI start-up
    from astroray.render import render_files_to_png  # lazy: CLI start-up

    plan = plan_read(args.paths, format=args.format, labels=args.labels or None)
    kind = primary_kind(plan)
    if kind not in ("lightcurve", "spectrum"):
        raise IngestError(f"astroray render draws light curves and spectra, not {kind}s")
    table, errors = read_files(args.paths, format=args.format, kind=kind,
                               labels=args.labels or None)
    if args.human:  # plots for people: axes, units, legend, folded periodic variables
        from astroray.render.human import render_human  # lazy: CLI start-up

        written = render_human(table, kind, args.out, limit=args.limit, fold=args.fold)
    else:  # the papers' model-input images
        written = render_files_to_png(table, kind, args.out, limit=args.limit)
    print(f"render: {len(written)} {kind} PNG(s) -> {args.out}"
          + (f"; {errors.num_rows} object(s) could not be read" if errors.num_rows else ""))
    for row in errors.to_pylist()[:5]:
        print(f"  {row['error']}", file=sys.stderr)
    return 0


def _config_with(cls: type, args: argparse.Namespace, **overrides: object) -> object:
    """``cls`` from ``--config`` (or its defaults) with the given non-None overrides."""
    values = {k: v for k, v in overrides.items() if v is not None and v != ()}
    if args.config:
        config = cls.from_file(args.config)
        config = config.replace(**values) if values else config
    else:
        config = cls(**values)
    return config.smoke() if args.smoke else config


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from astroray.runtime import init_ray  # lazy: CLI start-up
    from astroray.train.astromer import (  # lazy: CLI start-up
        PretrainConfig,
        pretrain,
        write_pretrain_results,
    )

    started = time.perf_counter()
    config = _config_with(PretrainConfig, args, paths=tuple(args.paths), model=args.model,
                          epochs=args.epochs, num_workers=args.num_workers,
                          init_from=args.init_from)
    init_ray(args.address, num_cpus=args.num_cpus)
    summary = pretrain(config, args.out)
    write_pretrain_results(summary, config, args.out, smoke=args.smoke, started=started)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from astroray.infer.astromer import (  # lazy: CLI start-up
        EmbedConfig,
        embed,
        write_embed_results,
    )
    from astroray.runtime import init_ray  # lazy: CLI start-up

    started = time.perf_counter()
    config = _config_with(EmbedConfig, args, paths=tuple(args.paths), model=args.model)
    init_ray(args.address, num_cpus=args.num_cpus)
    summary = embed(config, args.out)
    write_embed_results(summary, config, args.out, smoke=args.smoke, started=started)
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from astroray.infer.catalogue import InferConfig, run_job  # lazy: CLI start-up
    from astroray.runtime import init_ray  # lazy: CLI start-up

    started = time.perf_counter()
    config = _config_with(InferConfig, args, paths=tuple(args.paths), model=args.model,
                          format=args.format, labels=tuple(args.labels),
                          files_per_shard=args.files_per_shard, batch_size=args.batch_size,
                          num_actors=args.num_actors, embedding=args.embedding or None,
                          restart=args.restart or None)
    init_ray(args.address, num_cpus=args.num_cpus)
    run_job(config, args.out, smoke=args.smoke, started=started)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from astroray.infer.report import write_report  # lazy: CLI start-up

    path = write_report(args.catalogue, args.out, gallery=args.gallery)
    print(f"report: {path}")
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from astroray.submit import submit_job  # lazy: CLI start-up

    rest = list(args.job_args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    elif "--" in rest:
        # ``astroray submit JOB [OPTIONS] -- ARGS``: the options between JOB and -- are ours.
        cut = rest.index("--")
        opts, rest = rest[:cut], rest[cut + 1:]
        args = args.submit_parser.parse_args(opts, namespace=args)
    try:
        return submit_job(args.job, rest, address=args.address, pip=args.pip,
                          env_vars=args.env, excludes=args.exclude, python=args.python,
                          submission_id=args.submission_id, follow=not args.no_wait,
                          timeout=args.timeout)
    except ConnectionError as exc:
        print(f"astroray submit: error: {exc}", file=sys.stderr)
        return 2


def _cmd_serve(args: argparse.Namespace) -> int:
    from astroray.serve.config import ServeConfig, serve_config_yaml  # lazy: CLI start-up

    config = ServeConfig.from_file(args.config)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port,
                                   "model_root": args.model_root}.items() if v is not None}
    config = config.replace(**overrides) if overrides else config
    if args.print_serve_config:
        sys.stdout.write(serve_config_yaml(config))
        return 0
    from astroray.runtime import init_ray  # lazy: CLI start-up
    from astroray.serve.app import run  # lazy: CLI start-up

    init_ray(args.address, num_cpus=args.num_cpus)
    try:
        run(config)  # until Ctrl-C or SIGTERM (main turns it into KeyboardInterrupt)
    finally:
        _shutdown_ray()  # leave no Serve replica and, for a local Ray, no Ray process
    print("astroray serve: stopped", file=sys.stderr)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from astroray.models.astromer.convert import convert_astromer1  # lazy: CLI start-up

    out = convert_astromer1(args.src, args.out)
    print(f"convert: {args.kind} weights in {args.src} -> {out} (astroray.models.load_model)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``astroray`` command."""
    parser = argparse.ArgumentParser(
        prog="astroray", description="Survey-scale astronomy machine learning on Ray.")
    from astroray._version import __version__  # lazy: CLI start-up

    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"astroray {__version__}")
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace what stands in the way in OUT (files astroray did not write); "
                   "without it such an output folder is refused")
    p.add_argument("--config", default=None, help="YAML/JSON IngestConfig")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("render", help="draw light curves or spectra as the papers' images (PNG)")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--format", default=None, help="reader for every file (default: sniff)")
    p.add_argument("--labels", action="append", default=[], help="label table (repeatable)")
    p.add_argument("--limit", type=int, default=16, help="render the first N objects (16)")
    p.add_argument("--human", action="store_true",
                   help="plots for people (axes with units, band legend, error bars, periodic "
                   "variables phase-folded) instead of the models' input images")
    p.add_argument("--fold", default="auto", choices=["auto", "period", "lomb_scargle", "none"],
                   help="with --human: fold at the catalogue period, else at a significant "
                   "Lomb-Scargle period (auto); only the catalogue period; always; never")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("pretrain", help="pretrain an Astromer encoder on Ray Train")
    p.add_argument("paths", nargs="*", help="light-curve files/folders or canonical Parquet")
    p.add_argument("--out", required=True, help="output folder (model/, ray/, results.json); "
                   "re-running with the same folder resumes")
    p.add_argument("--config", default=None, help="YAML/JSON PretrainConfig "
                   "(e.g. jobs/pretrain_astromer.yaml)")
    p.add_argument("--model", default=None, help="astromer-v1, astromer-v2, ...")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training objects (default: the config's, 5)")
    p.add_argument("--num-workers", type=int, default=None, help="Ray Train workers")
    p.add_argument("--init-from", default=None, help="a saved model folder (or a published "
                   "model, astromer1-macho) to continue from")
    p.add_argument("--smoke", action="store_true", help="tiny model, few objects, 2 epochs")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("convert", help="import published weights (the authors' TensorFlow "
                       "Astromer 1 checkpoint) as a model folder")
    p.add_argument("kind", choices=["astromer1"], help="what the checkpoint is")
    p.add_argument("src", help="the official weights folder (conf.json + weights.index/.data)")
    p.add_argument("--out", required=True, help="the model folder to write")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("embed", help="per-object Astromer embeddings as Parquet")
    p.add_argument("paths", nargs="*", help="light-curve files/folders or canonical Parquet")
    p.add_argument("--model", default=None,
                   help="a saved model folder (a pretraining run's OUT/model), a published "
                   "model (astromer1-macho) or a registry name")
    p.add_argument("--out", required=True, help="output folder (embeddings/, results.json)")
    p.add_argument("--config", default=None, help="YAML/JSON EmbedConfig")
    p.add_argument("--smoke", action="store_true", help="a tiny model")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("infer", help="bulk inference of survey files into a Parquet catalogue")
    p.add_argument("paths", nargs="*", help="survey files/folders (any supported format)")
    p.add_argument("--model", default=None, help="a saved model folder (any family)")
    p.add_argument("--out", required=True, help="output folder (catalogue/, errors/, "
                   "results.json); re-running with the same folder resumes")
    p.add_argument("--format", default=None, help="reader for every file (default: sniff)")
    p.add_argument("--labels", action="append", default=[], help="label table (repeatable)")
    p.add_argument("--files-per-shard", type=int, default=None,
                   help="input files per shard, the unit of resumption (default 256)")
    p.add_argument("--batch-size", type=int, default=None, help="objects per model call")
    p.add_argument("--num-actors", type=int, default=None, help="model actors (one per GPU)")
    p.add_argument("--embedding", action="store_true", help="add the embedding column")
    p.add_argument("--restart", action="store_true",
                   help="start the catalogue in OUT over (needed when the model changed)")
    p.add_argument("--config", default=None, help="YAML/JSON InferConfig "
                   "(e.g. jobs/bulk_infer.yaml)")
    p.add_argument("--smoke", action="store_true", help="shrink the config's inputs")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_infer)

    p = sub.add_parser("report", help="an HTML page about a catalogue (plots, gallery, errors)")
    p.add_argument("catalogue", help="a run folder of astroray infer")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--gallery", type=int, default=8,
                   help="rendered inputs of the N most and N least confident objects (8)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="synthetic survey + real samples -> ingest -> summary")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--real", default=None,
                   help="folder of real samples (default: ../shared/data/real when present; "
                        "'' for none)")
    p.add_argument("--config", default=None, help="YAML/JSON DemoConfig")
    p.add_argument("--smoke", action="store_true", help="a much smaller synthetic survey")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("submit", help="run a job of jobs/ on a Ray cluster (Ray Jobs API)",
                       usage="astroray submit [OPTIONS] JOB [OPTIONS --] [JOB ARGS...]",
                       description="Upload the repository as the working directory, submit "
                       "python jobs/JOB.py JOB ARGS, stream its logs; exit 0 when it succeeded.")
    submit_options = argparse.ArgumentParser(prog="astroray submit", add_help=False)
    for q in (p, submit_options):
        q.add_argument("--address", default=None, help="the cluster's dashboard, "
                       "http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, an http RAY_ADDRESS, "
                       "else http://127.0.0.1:8265)")
        q.add_argument("--pip", action="store_true",
                       help="pip-install pyproject.toml's dependencies in the job's environment")
        q.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                       help="environment variable of the job; NAME alone passes this shell's")
        q.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                       help="further path pattern left out of the upload (repeatable)")
        q.add_argument("--python", default="python", help="interpreter on the cluster")
        q.add_argument("--submission-id", default=None, help="an id of your own")
        q.add_argument("--no-wait", action="store_true", help="return once submitted")
        q.add_argument("--timeout", type=float, default=None,
                       help="seconds to wait; then the job is stopped and the exit status is 124")
    p.add_argument("job", help="a job of jobs/ (ingest, pretrain_astromer, ...) or its path")
    p.add_argument("job_args", nargs=argparse.REMAINDER,
                   help="arguments of the job, after -- (e.g. -- --smoke --out /data/out/x)")
    p.set_defaults(func=_cmd_submit, submit_parser=submit_options)

    p = sub.add_parser("serve", help="serve the models over HTTP (Ray Serve) until interrupted")
    p.add_argument("--config", required=True,
                   help="YAML/JSON ServeConfig (e.g. cluster/serve/astroray_serve.yaml)")
    p.add_argument("--host", default=None, help="override the config's host (127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="override the config's port")
    p.add_argument("--model-root", default=None,
                   help="folder that relative model folders are relative to")
    p.add_argument("--print-serve-config", action="store_true",
                   help="print the `serve deploy` YAML of this config and exit")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_serve)
    return parser


class ArgumentError(ValueError):
    """A command-line argument is wrong; the message names it."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _preflight(args: argparse.Namespace) -> None:
    """Check paths, model folders, formats and resources before Ray starts.

    In well under a second, so that a typo costs nothing; the message names the argument.

    Raises:
        ArgumentError: naming the argument and the value.
    """
    for path in getattr(args, "paths", None) or []:
        if not _is_uri(path) and not os.path.exists(path):
            raise ArgumentError(f"PATHS: {path}: no such file or folder")
    for path in getattr(args, "labels", None) or []:
        if not _is_uri(path) and not os.path.isfile(path):
            raise ArgumentError(f"--labels {path}: no such file")
    config = getattr(args, "config", None)
    if config and not os.path.isfile(config):
        raise ArgumentError(f"--config {config}: no such file")
    fmt = getattr(args, "format", None)
    if fmt:
        from astroray.data.registry import list_formats  # lazy: CLI start-up

        if fmt not in list_formats():
            raise ArgumentError(f"--format {fmt}: unknown format; known: "
                                f"{', '.join(list_formats())}")
    num_cpus = getattr(args, "num_cpus", None)
    if num_cpus is not None and num_cpus <= 0:
        raise ArgumentError(f"--num-cpus {num_cpus}: must be a positive integer")
    for name in ("epochs", "num_workers", "files_per_shard", "batch_size", "num_actors",
                 "limit"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ArgumentError(f"--{name.replace('_', '-')} {value}: must be a positive "
                                "integer")
    out = getattr(args, "out", None)
    if out and args.command != "report":
        _check_out_folder(out)
    elif out:  # report: an HTML file in a folder that can exist
        _check_out_folder(os.path.dirname(os.path.abspath(out)))
    model = getattr(args, "model", None)
    if model and args.command in ("infer", "embed"):
        _check_model_argument("--model", model, allow_registry=args.command == "embed")
    init_from = getattr(args, "init_from", None)
    if init_from:
        _check_model_argument("--init-from", init_from, allow_registry=False)
    if args.command == "report" and not os.path.isdir(args.catalogue):
        raise ArgumentError(f"CATALOGUE {args.catalogue}: no such folder")
    if args.command == "convert" and not os.path.isdir(args.src):
        raise ArgumentError(f"SRC {args.src}: no such folder")


def _check_out_folder(out: str) -> None:
    """``--out`` is a folder, or can become one under a writable folder (not a file)."""
    if _is_uri(out):
        return
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ArgumentError(f"--out {out}: exists and is not a folder")
        return
    parent = os.path.dirname(os.path.abspath(out))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ArgumentError(f"--out {out}: cannot be created ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArgumentError(f"--out {out}: cannot be created ({parent} is not writable)")


def _check_model_argument(flag: str, model: str, *, allow_registry: bool) -> None:
    """A model argument: a saved folder, a published name (or a registry name)."""
    if os.path.isdir(model):
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise ArgumentError(f"{flag} {model}: not a saved model folder (no config.json)")
        from astroray.models import check_model_folder  # lazy: CLI start-up

        try:  # config parses, known family, weights complete and of the config's shapes
            check_model_folder(model)
        except (FileNotFoundError, ValueError) as exc:
            raise ArgumentError(f"{flag} {model}: {exc}") from None
        return
    if os.sep in model or model.startswith("."):  # a path, not a name: no need for torch
        raise ArgumentError(f"{flag} {model}: no such folder")
    from astroray.models import list_models, list_published  # lazy: CLI start-up

    names = list(list_published()) + (list(list_models()) if allow_registry else [])
    if model not in names:
        raise ArgumentError(f"{flag} {model}: no such folder (nor a published model: "
                            f"{', '.join(list_published())})")


#: What an interrupted command leaves behind, said in its one last line.
_KEPT = {
    "ingest": "the output folder keeps its previous complete result (if any); staging is "
              "cleaned up by the next run",
    "infer": "finished shards are kept; the same command resumes",
    "pretrain": "checkpoints are kept under OUT/ray; the same command resumes",
    "embed": "nothing was published; run it again",
    "serve": "Serve and the local Ray were shut down",
    "demo": "finished steps are kept; the same command resumes",
}
_SIGNAL: dict[str, int] = {}


def _on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler, `kill`) stops a command the way Ctrl-C does: one line, Ray shut
    # down, no process left behind.
    _SIGNAL["received"] = signum
    raise KeyboardInterrupt


def _shutdown_ray() -> None:
    """Stop Serve and Ray if this process started or joined them (quietly)."""
    if "ray" not in sys.modules:
        return
    import ray  # lazy: ray

    if not ray.is_initialized():
        return
    try:
        if "ray.serve" in sys.modules:
            from ray import serve  # lazy: ray

            serve.shutdown()
    except Exception:  # noqa: BLE001 - shutting down after an interruption: best effort
        pass
    ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astroray`` command; returns the exit status."""
    from astroray.config import ConfigError  # lazy: CLI start-up

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    out = getattr(args, "out", None)
    log_file = (os.path.join(out, "logs", "ray.log")
                if out and args.command not in ("report", "convert", "render") else None)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _preflight(args)
        from astroray.runtime import configure_console  # lazy: ray (after the checks)

        configure_console(verbose=args.verbose, log_file=log_file, on_sigterm=_on_sigterm)
        return int(args.func(args) or 0)
    except (ConfigError, OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        return _user_error(args, exc)
    except RuntimeError as exc:
        if type(exc).__name__ != "IngestError":  # (not imported here: it imports Ray)
            raise
        return _user_error(args, exc)
    except KeyboardInterrupt:
        code = 143 if _SIGNAL.pop("received", None) == signal.SIGTERM else 130
        kept = _KEPT.get(args.command, "")
        print(f"astroray {args.command}: interrupted{'; ' + kept if kept else ''}",
              file=sys.stderr)
        _shutdown_ray()
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _user_error(args: argparse.Namespace, exc: BaseException) -> int:
    """One line naming what is wrong (the traceback too with --verbose); exit status 2."""
    if args.verbose:
        traceback.print_exception(exc)
    message = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
        message = f"{exc.filename}: {message}"
    print(f"astroray {args.command}: error: {message}", file=sys.stderr)
    return 2

if __name__ == "__main__":
    sys.exit(main())
