"""Exactly-once catalogues under changed inputs, changed models and killed runs (issue 19).

Every test counts rows per input object: an input object is a ``(source, object_id)`` pair,
and each must be in the catalogue or the errors exactly once after a run, whatever was added,
removed, modified or renamed before it, and however often the run before it was killed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from astroray.data.registry import read_files
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
from astroray.infer.catalogue import InferConfig, read_catalogue, run_inference
from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")
SHORT = "time,mag,magerr,band\n1.0,15.0,0.1,g\n2.0,15.1,0.1,g\n"  # too short to window


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=CLASSES, hidden=(32, 16), min_points=5))
    return model.eval().save_pretrained(tmp_path_factory.mktemp("models") / "clf")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> list[Path]:
    """60 synthetic light curves, one CSV file each (copied into each test's inputs)."""
    folder = tmp_path_factory.mktemp("template")
    make_survey(SyntheticSurveyConfig(kind="periodic", n=60, format="csv", seed=11), folder)
    files = sorted((folder / "light-curves").glob("*.csv"))
    assert len(files) == 60
    return files


def _config(model: Path, *paths: Path, **kw) -> InferConfig:
    values = {"files_per_shard": 4, "batch_size": 16, "actor_cpus": 0.5, "task_cpus": 0.25}
    return InferConfig(model=str(model), paths=tuple(str(p) for p in paths), **{**values, **kw})


def _copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(f, folder / f.name)) for f in files]


def _rows(out: Path) -> tuple[Counter, Counter]:
    """Rows per input object in the catalogue and in the errors."""
    def count(table) -> Counter:
        if not table.num_rows:
            return Counter()
        return Counter(zip(table.column("source").to_pylist(),
                           table.column("object_id").to_pylist(), strict=True))

    cat, err = read_catalogue(out)
    return count(cat), count(err)


def _inputs(folder: Path) -> set[tuple[str, str]]:
    """The input objects of a folder of one-object CSV files (id = file stem)."""
    return {(str(p.resolve()), p.stem) for p in folder.rglob("*.csv")}


def _assert_exactly_once(out: Path, expected: set[tuple[str, str]]) -> tuple[Counter, Counter]:
    cat, err = _rows(out)
    both = cat + err
    twice = {k: n for k, n in both.items() if n > 1}
    assert not twice, f"{len(twice)} object(s) more than once, e.g. {list(twice.items())[:3]}"
    assert set(both) == expected, (f"lost {sorted(expected - set(both))[:3]}, "
                                   f"extra {sorted(set(both) - expected)[:3]}")
    return cat, err


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "_state" / "done").glob("*.json")}


def test_added_files_are_processed_and_finished_ones_skipped(ray_session, classifier_dir,
                                                             template, tmp_path):
    """Defect 1: one added file used to rename every shard and duplicate the catalogue."""
    inputs, out = tmp_path / "in", tmp_path / "run"
    _copy(template[:12], inputs / "survey")
    first = run_inference(_config(classifier_dir, inputs), out, progress=False)
    assert (first.catalogued, first.shards) == (12, 3)
    # A file that sorts before all others (it would shift every position-based shard).
    _copy(template[12:13], inputs / "aaa")
    second = run_inference(_config(classifier_dir, inputs), out, progress=False)
    cat, _ = _assert_exactly_once(out, _inputs(inputs))
    assert sum(cat.values()) == 13
    assert (second.catalogued, second.failed) == (1, 0)  # only the new file was processed
    assert (second.shards, second.shards_skipped, second.shards_retired) == (4, 3, 0)
    # Nothing changed: nothing to do, the same rows.
    third = run_inference(_config(classifier_dir, inputs), out, progress=False)
    assert (third.catalogued, third.shards_skipped, third.shards_retired) == (0, 4, 0)
    _assert_exactly_once(out, _inputs(inputs))


def test_removed_and_modified_files_retire_their_rows(ray_session, classifier_dir, template,
                                                      tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "run"
    files = _copy(template[:12], inputs / "survey")
    run_inference(_config(classifier_dir, inputs), out, progress=False)
    removed, modified = [files[1], files[9]], files[5]
    touched = {str(p.resolve()) for p in (*removed, modified)}
    covering = [r for r in _records(out).values()
                if touched & {p[0] for u in r.get("units", []) for p in u["paths"]}]
    for p in removed:
        p.unlink()
    modified.write_text(SHORT)  # now too short to window: its row becomes an error row
    summary = run_inference(_config(classifier_dir, inputs), out, progress=False)
    cat, err = _assert_exactly_once(out, _inputs(inputs))
    assert (sum(cat.values()), sum(err.values())) == (9, 1)
    assert list(err) == [(str(modified.resolve()), modified.stem)]
    assert not {k[0] for k in cat} & {str(p.resolve()) for p in removed}
    # Only the shards holding a touched file were redone, without their removed files.
    redone = sum(len(u["paths"]) for r in covering for u in r.get("units", [])) - len(removed)
    assert summary.shards_retired == len(covering)
    assert summary.catalogued + summary.failed == redone
    assert summary.shards_skipped == 3 - len(covering)


def test_a_renamed_folder_is_redone_once(ray_session, classifier_dir, template, tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "run"
    _copy(template[:8], inputs / "survey")
    run_inference(_config(classifier_dir, inputs), out, progress=False)
    moved = tmp_path / "moved"
    inputs.rename(moved)
    summary = run_inference(_config(classifier_dir, moved), out, progress=False)
    cat, _ = _assert_exactly_once(out, _inputs(moved))
    assert sum(cat.values()) == summary.catalogued == 8 and summary.shards_retired == 2


def test_a_changed_model_is_refused_and_restart_starts_over(ray_session, classifier_dir,
                                                            template, tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "run"
    _copy(template[:6], inputs / "survey")
    first = run_inference(_config(classifier_dir, inputs), out, progress=False)
    other = AstromerClassifier.from_pretrained(classifier_dir)
    with torch.no_grad():
        for p in other.head.parameters():
            p.add_(0.5)
    other_dir = other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match=r"made by model .* hash .*restart") as info:
        run_inference(_config(other_dir, inputs), out, progress=False)
    assert first.model_hash in str(info.value)
    cat, _ = read_catalogue(out)
    assert cat.num_rows == 6 and set(cat.column("model_hash").to_pylist()) == {first.model_hash}
    # Options that change the catalogue's columns bind it too.
    with pytest.raises(ValueError, match="embedding"):
        run_inference(_config(classifier_dir, inputs, embedding=True), out, progress=False)
    again = run_inference(_config(other_dir, inputs, restart=True), out, progress=False)
    cat, _ = _assert_exactly_once(out, _inputs(inputs))
    assert again.catalogued == 6 and again.model_hash != first.model_hash
    assert set(read_catalogue(out)[0].column("model_hash").to_pylist()) == {again.model_hash}


@pytest.mark.timeout(600)
def test_a_repaired_model_is_accepted(ray_session, classifier_dir, template, tmp_path):
    """Defect 12: a truncated checkpoint left the folder refusing the repaired model."""
    inputs, out = tmp_path / "in", tmp_path / "run"
    _copy(template[:4], inputs / "survey")
    model = Path(shutil.copytree(classifier_dir, tmp_path / "model"))
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors.*(truncated|complete)"):
        run_inference(_config(model, inputs), out, progress=False)
    assert not (out / "catalogue").exists()
    (model / "model.safetensors").write_bytes(weights)  # repaired in place
    summary = run_inference(_config(model, inputs), out, progress=False)
    assert summary.catalogued == 4
    _assert_exactly_once(out, _inputs(inputs))


# ------------------------------------------------------------------------------------------
# Killed runs (a real `astroray infer` process, joined to the session's Ray)
# ------------------------------------------------------------------------------------------


def _args(inputs: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "astroray.cli", "infer", str(inputs), "--model", str(model),
            "--out", str(out), "--files-per-shard", "3", "--batch-size", "4"]


def _start(inputs: Path, model: Path, out: Path, ray_address: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    return subprocess.Popen(_args(inputs, model, out), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_at_random(proc: subprocess.Popen, out: Path, rng: random.Random, sig: int
                    ) -> str:
    """Kill ``proc`` at a random point; returns what happened, for the failure message.

    Half the time after a random delay (start-up, planning, reading or inference), else once
    a random number of further shards is published, plus a random delay (publication).
    """
    done = out / "_state" / "done"
    n0 = len(list(done.glob("*.json"))) if done.is_dir() else 0
    by_shards = rng.random() < 0.5
    target = n0 + rng.randint(1, 3)
    delay = rng.uniform(0.0, 1.5) if by_shards else rng.uniform(1.0, 25.0)
    start = time.time()
    while proc.poll() is None and time.time() - start < 300:
        if by_shards:
            if done.is_dir() and len(list(done.glob("*.json"))) >= target:
                time.sleep(delay)
                break
        elif time.time() - start >= delay:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        return f"finished before the kill (rc {proc.returncode})"
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:  # a SIGTERM the process did not act on in time
        proc.kill()
        proc.wait()
    return (f"{signal.Signals(sig).name} after {time.time() - start:.1f} s "
            f"({'shards' if by_shards else 'time'}), {len(list(done.glob('*.json')))} done")


@pytest.mark.timeout(1500)
def test_killed_runs_under_changing_inputs_count_every_object_once(ray_session, classifier_dir,
                                                                   template, tmp_path):
    """Point 7: `astroray infer` killed at random points, inputs changing in between.

    Four attempts, killed by SIGKILL and SIGTERM, with files added, removed or modified
    between them; after each, nothing is there twice; after a final full run, every input
    object is in the catalogue or the errors exactly once. ``ASTRORAY_FUZZ_SEED`` replays a
    failure (the seed is in the message).
    """
    seed = int(os.environ.get("ASTRORAY_FUZZ_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    address = ray_session.get_runtime_context().gcs_address
    inputs, out = tmp_path / "in", tmp_path / "run"
    _copy(template[:24], inputs / "survey")
    spare = list(template[24:])
    log = [f"seed {seed}"]

    def change() -> None:  # what a survey does between two runs
        what = rng.choice(["add", "add", "remove", "modify"])
        if what == "add":
            k = rng.randint(1, 4)
            sub = rng.choice(["aaa", "survey", "zzz"])
            _copy([spare.pop() for _ in range(k)], inputs / sub)
            log.append(f"added {k} to {sub}")
        elif what == "remove":
            victim = rng.choice(sorted(inputs.rglob("*.csv")))
            victim.unlink()
            log.append(f"removed {victim.name}")
        else:
            victim = rng.choice(sorted(inputs.rglob("*.csv")))
            lines = victim.read_text().splitlines(keepends=True)
            victim.write_text("".join(lines[: max(len(lines) // 2, 2)]))
            log.append(f"modified {victim.name}")

    for attempt, sig in enumerate([signal.SIGKILL, signal.SIGTERM, signal.SIGKILL,
                                   signal.SIGTERM]):
        proc = _start(inputs, classifier_dir, out, address)
        log.append(f"attempt {attempt}: " + _kill_at_random(proc, out, rng, sig))
        # Whatever a kill leaves behind is never read as rows: nothing twice, at any time.
        cat, err = _rows(out)
        assert all(n == 1 for n in (cat + err).values()), "\n".join(log)
        change()
    final = subprocess.run(_args(inputs, classifier_dir, out), cwd=ROOT,
                           env={**os.environ, "RAY_ADDRESS": address}, capture_output=True,
                           text=True, timeout=900, check=False)
    assert final.returncode == 0, "\n".join(log) + final.stdout[-2000:] + final.stderr[-3000:]
    cat, err = _assert_exactly_once(out, _inputs(inputs))
    data, read_err = read_files(inputs)
    assert sum(cat.values()) + sum(err.values()) == data.num_rows + read_err.num_rows
    hidden = [p for d in ("catalogue", "errors") for p in (out / d).glob(".*")]
    assert not hidden, hidden  # no temporaries left behind
    print("\n".join(log))
