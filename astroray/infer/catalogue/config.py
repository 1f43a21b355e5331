"""The settings of a bulk-inference run and the summary of what it did."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from astroray.config import ActorResources, check, check_cpus, check_positive_ints
from astroray.data.inputs import check_inputs, resolve_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.train.classify import ClassifyConfig

__all__ = ["InferConfig", "InferSummary"]


@dataclasses.dataclass
class InferConfig(ActorResources):
    """Settings of ``astroray infer`` / ``jobs/bulk_infer.py``.

    The model actors (``num_actors``, ``actor_cpus``, ``use_gpu``) are the
    :class:`~astroray.config.ActorResources` group.

    Attributes:
        model: a saved model folder (any family with a registered predictor); empty: train
            one first with ``train`` (saved as ``OUT/model``).
        paths: survey files/folders (any supported format) or canonical Parquet.
        optional_paths: the same, used when present (the real samples).
        synthetic: a synthetic survey generated into ``OUT/input`` and added to the inputs.
        train: how to train the model when ``model`` is empty: a classification config (its
            first data set trains the head), or the path of its YAML.
        format: reader for every file; None sniffs each file.
        labels: label tables joined to the objects (kept as ``label`` in the catalogue).
        files_per_shard: input files per shard (the unit of resumption).
        batch_size: objects per model call.
        task_cpus: CPUs per read task (fractional: leaves room for the actors).
        embedding: add the model's embedding column.
        fail_objects: test hook: the model raises on any batch holding one of these ids.
        crash_after_batches: test hook: the first model actor exits abruptly after this many
            batches (once per run folder), as a dying worker would.
        restart: discard the run folder's catalogue, errors and state first (what it takes to
            change the model of a folder that holds a published catalogue).
    """

    model: str = ""
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    train: Any = None
    format: str | None = None
    labels: tuple[str, ...] = ()
    files_per_shard: int = 256
    batch_size: int = 256
    task_cpus: float = 0.5
    embedding: bool = False
    fail_objects: tuple[str, ...] = ()
    crash_after_batches: int | None = None
    restart: bool = False

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        self.fail_objects = tuple(str(v) for v in self.fail_objects)
        if isinstance(self.train, str):
            check(Path(self.train).is_file(), self, "train", self.train,
                  "a classification mapping or an existing YAML file")
            self.train = ClassifyConfig.from_file(self.train)
        elif isinstance(self.train, dict):
            self.train = ClassifyConfig.from_dict(self.train)
        check(self.train is None or isinstance(self.train, ClassifyConfig), self, "train",
              self.train, "a ClassifyConfig mapping, a YAML path or null")
        check(isinstance(self.model, str) and (self.model != "" or self.train is not None),
              self, "model", self.model, "a saved model folder (or a train configuration)")
        check_inputs(self)
        check_positive_ints(self, "files_per_shard", "batch_size")
        self.check_actor_resources()
        check_cpus(self, "task_cpus")
        check(self.crash_after_batches is None or (isinstance(self.crash_after_batches, int)
                                                   and self.crash_after_batches > 0),
              self, "crash_after_batches", self.crash_after_batches, "null or a positive integer")
        check(isinstance(self.restart, bool), self, "restart", self.restart, "true or false")

    def smoke(self) -> InferConfig:
        """This configuration shrunk to run in a couple of minutes on 2 CPUs."""
        synthetic = self.synthetic and self.synthetic.replace(n=min(self.synthetic.n, 300))
        train = self.train and self.train.smoke()
        return self.replace(synthetic=synthetic, train=train,
                            files_per_shard=min(self.files_per_shard, 64))

    def input_paths(self, workdir: str | Path) -> tuple[str, ...]:
        """The inputs: ``paths``, the optional ones present, and the synthetic survey.

        The synthetic survey is generated once into ``workdir/synthetic`` (seeded, so that a
        re-run reads the same files).
        """
        return tuple(resolve_inputs(self.paths, self.optional_paths, self.synthetic, workdir,
                                    to_parquet=False).paths)


@dataclasses.dataclass
class InferSummary:
    """What a run did: objects catalogued and failed, shards done and skipped, time.

    ``catalogued`` and ``failed`` count this run's work (objects of kept shards are not
    counted again); ``shards_retired`` counts published shards withdrawn because their files
    changed; ``duplicate_ids`` / ``duplicate_rows`` describe the whole published catalogue
    (objects whose ``(survey, object_id)`` has 2+ rows, and the rows beyond the first).
    """

    catalogued: int
    failed: int
    shards: int
    shards_skipped: int
    seconds: float
    out: str
    model: str
    model_hash: str
    shards_retired: int = 0
    duplicate_ids: int = 0
    duplicate_rows: int = 0

    @property
    def objects(self) -> int:
        """Objects accounted for in this run (catalogued + failed)."""
        return self.catalogued + self.failed

    def line(self) -> str:
        """The one-line summary printed at the end."""
        rate = self.objects / self.seconds if self.seconds > 0 else 0.0
        skipped = f", {self.shards_skipped} already done" if self.shards_skipped else ""
        retired = (f", {self.shards_retired} retired (inputs changed)" if self.shards_retired
                   else "")
        dup = (f"; {self.duplicate_ids} object id(s) in 2+ inputs, {self.duplicate_rows} "
               "extra row(s) kept: see duplicates.parquet" if self.duplicate_ids else "")
        return (f"infer: {self.model} ({self.model_hash}): catalogued {self.catalogued}, "
                f"failed {self.failed} ({self.shards} shard(s){skipped}{retired}; "
                f"{self.seconds:.1f} s, {rate:.0f} objects/s){dup} -> {self.out}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {**dataclasses.asdict(self), "objects": self.objects}
