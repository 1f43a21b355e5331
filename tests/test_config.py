from __future__ import annotations

import pytest

from astroray.config import ConfigError
from astroray.data.ingest import IngestConfig
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.demo import DemoConfig

SYN = {"kind": "periodic", "n": 10}


def test_yaml_and_json_round_trip(tmp_path):
    config = IngestConfig(paths=("a", "b"), labels=("l.csv",), task_cpus=0.5,
                          synthetic=SyntheticSurveyConfig(kind="spectra", n=5, format="sdss"))
    for name in ("c.yaml", "c.json"):
        config.save(tmp_path / name)
        assert IngestConfig.from_file(tmp_path / name) == config


def test_errors_name_the_field_and_the_value():
    with pytest.raises(ConfigError, match=r"IngestConfig.task_cpus = 0 is invalid"):
        IngestConfig(paths=("a",), task_cpus=0)
    with pytest.raises(ConfigError, match=r"IngestConfig.format = 'fits' is invalid"):
        IngestConfig(paths=("a",), format="fits")
    with pytest.raises(ConfigError, match=r"IngestConfig.paths"):
        IngestConfig()
    with pytest.raises(ConfigError, match=r"DemoConfig.spectra = -1"):
        DemoConfig(spectra=-1)
    with pytest.raises(ConfigError, match=r"SyntheticSurveyConfig.format = 'sdss'"):
        IngestConfig.from_dict({"synthetic": {"kind": "periodic", "format": "sdss"}})


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['pathz'\]"):
        IngestConfig.from_dict({"pathz": ["a"]})


def test_check_positive_ints_names_the_field_and_refuses_bools():
    import dataclasses

    from astroray.config import check_positive_ints

    @dataclasses.dataclass
    class Budget:
        steps: object = 3
        folds: object = 2

    check_positive_ints(Budget(), "steps", "folds")
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ConfigError, match=rf"Budget\.folds = {bad!r} is invalid: expected "
                                              "a positive integer"):
            check_positive_ints(Budget(folds=bad), "steps", "folds")


def test_old_cpu_names_say_the_new_one():
    with pytest.raises(ConfigError, match=r"IngestConfig: read_cpus is now task_cpus"):
        IngestConfig.from_dict({"paths": ["a"], "read_cpus": 0.5})
    from astroray.train.astromer import PretrainConfig

    with pytest.raises(ConfigError, match=r"data_cpus is now task_cpus"):
        PretrainConfig.from_dict({"data_cpus": 0.5})


def test_smoke_overlay_merges_deeply_and_travels(tmp_path):
    from astroray.studies.debias import DebiasConfig

    path = tmp_path / "d.yaml"
    path.write_text("epochs: 4\ngalaxies: {size: 24, snr_min: 3.0}\n"
                    "smoke:\n  epochs: 1\n  galaxies: {size: 16}\n  strategies: [naive]\n")
    cfg = DebiasConfig.from_file(path)
    assert cfg.epochs == 4 and cfg.has_smoke()
    small = cfg.replace(lr=1e-3).smoke()  # the overlay travels with replace()
    assert (small.epochs, small.galaxies.size, small.galaxies.snr_min) == (1, 16, 3.0)
    assert small.strategies == ("naive",) and small.lr == 1e-3  # lists replace
    assert "smoke" not in cfg.to_dict()
    # An overlay is checked when it is read, naming the file and the field.
    path.write_text("smoke: {epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"d.yaml: DebiasConfig.smoke: .*epochs = 0"):
        DebiasConfig.from_file(path)
    path.write_text("smoke: [1]\n")
    with pytest.raises(ConfigError, match=r"DebiasConfig.smoke = \[1\] is invalid"):
        DebiasConfig.from_file(path)
    with pytest.raises(ConfigError, match=r"DebiasConfig: no smoke settings"):
        DebiasConfig().smoke()


def test_smoke_overlay_leaves_null_parts_null_and_refuses_code_smoked_classes():
    from astroray.config import _merge
    from astroray.train.astromer import PretrainConfig

    assert _merge({"a": None, "b": {"c": 1, "d": 2}}, {"a": {"n": 1}, "b": {"c": 5}}) == {
        "a": None, "b": {"c": 5, "d": 2}}
    with pytest.raises(ConfigError, match=r"PretrainConfig: its smoke settings are code"):
        PretrainConfig.from_dict({"synthetic": SYN, "smoke": {"epochs": 1}})


def test_sweep_smoke_shrinks_its_base_too():
    from astroray.studies.tune_domain import TuneDomainConfig

    cfg = TuneDomainConfig.from_file("jobs/tune_domain.yaml")
    small = cfg.smoke()
    assert (cfg.num_samples, small.num_samples, small.grace_period) == (16, 3, 1)
    assert cfg.base.source_steps == 1500 and small.base.source_steps == 150
    assert small.base.pick_seeds == (0,) and small.shots == cfg.shots


def test_train_resources_map_onto_ray_scaling_config():
    from astroray.train.astromer import PretrainConfig

    cfg = PretrainConfig.from_dict({"synthetic": SYN, "num_workers": 3, "cpus_per_worker": 0.25})
    scaling = cfg.scaling_config(use_gpu=False)
    assert scaling.num_workers == 3 and scaling.use_gpu is False
    assert scaling.resources_per_worker == {"CPU": 0.25}
    assert cfg.replace(use_gpu=True).scaling_config(use_gpu=False).use_gpu is True
    with pytest.raises(ConfigError, match=r"PretrainConfig.cpus_per_worker = 0 is invalid"):
        cfg.replace(cpus_per_worker=0)
    with pytest.raises(ConfigError, match=r"PretrainConfig.lr = 0 is invalid"):
        cfg.replace(lr=0)


def test_actor_resources_map_onto_ray_data_actor_pools():
    import ray.data

    from astroray.infer.astromer import EmbedConfig
    from astroray.infer.catalogue import InferConfig

    cfg = InferConfig(model="m", paths=("x",), num_actors=3, actor_cpus=0.5)
    pool = cfg.actor_pool(use_gpu=False)
    assert isinstance(pool["compute"], ray.data.ActorPoolStrategy)
    assert pool["compute"].min_size == pool["compute"].max_size == 3
    assert (pool["num_cpus"], pool["num_gpus"]) == (0.5, 0)
    assert cfg.actor_pool(use_gpu=True)["num_gpus"] == 1  # use_gpu: null follows the cluster
    assert cfg.replace(use_gpu=False).actor_pool(use_gpu=True)["num_gpus"] == 0
    for bad in ({"num_actors": 0}, {"actor_cpus": 0}, {"use_gpu": "yes"}):
        field = next(iter(bad))
        with pytest.raises(ConfigError, match=rf"EmbedConfig.{field} = "):
            EmbedConfig(paths=("x",), **bad)
