"""sh/hparams.py writes one version per grid point or random sample, holding only its overrides."""
import subprocess
import sys

import pytest
import yaml

import hparams
from _experiments import UsageError, create_experiment, version_numbers
from conftest import PROJECT_ROOT

GRID = """\
optimizer.init_args.lr: [1e-3, 1.0e-2]
data.init_args.batch_size: [64, 128]
seeds: [0, 1]
"""
RANDOM = """\
samples: 6
sample_seed: 3
optimizer.init_args.lr: {log_uniform: [1.0e-5, 1.0e-1]}
optimizer.init_args.weight_decay: {uniform: [0.0, 0.5]}
data.init_args.batch_size: {int: [16, 32]}
trainer.gradient_clip_val: [0.5, 1.0]
"""


def write_spec(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def add(tmp_path, spec, experiment="exp", *extra):
    return hparams.main(["-e", experiment, "-s", str(spec), "-c", str(tmp_path / "config"), *extra])


def version_yaml(tmp_path, k, experiment="exp"):
    return yaml.safe_load((tmp_path / "config" / experiment / f"version_{k}" / "version.yaml").read_text())


def test_grid_with_seeds_writes_one_version_per_point_holding_only_its_overrides(tmp_path, capsys):
    create_experiment("exp", 1, tmp_path / "config", PROJECT_ROOT / "config" / "template.yaml")
    first = tmp_path / "config" / "exp" / "version_0" / "version.yaml"
    before = first.read_text()
    assert add(tmp_path, write_spec(tmp_path, GRID)) == 0
    assert version_numbers(tmp_path / "config" / "exp") == list(range(9))
    assert first.read_text() == before  # existing versions are never changed
    points = [version_yaml(tmp_path, k) for k in range(1, 9)]
    assert points[0] == {"optimizer": {"init_args": {"lr": 0.001}}, "data": {"init_args": {"batch_size": 64}},
                         "seed_everything": 0}
    combos = {(p["optimizer"]["init_args"]["lr"], p["data"]["init_args"]["batch_size"], p["seed_everything"])
              for p in points}
    assert combos == {(lr, bs, seed) for lr in (0.001, 0.01) for bs in (64, 128) for seed in (0, 1)}
    detail = (tmp_path / "config" / "exp" / "version_4" / "detail_desc.txt").read_text()
    assert "optimizer.init_args.lr=0.001, data.init_args.batch_size=128, seed_everything=1" in detail
    assert "run them: python sh/run.py -e exp -b 1 -t 9" in capsys.readouterr().out


def test_new_experiment_is_created_from_the_template(tmp_path):
    assert add(tmp_path, write_spec(tmp_path, GRID), "fresh") == 0
    experiment = tmp_path / "config" / "fresh"
    assert (experiment / "share.yaml").read_text() == (PROJECT_ROOT / "config" / "template.yaml").read_text()
    assert version_numbers(experiment) == list(range(8))


def test_random_search_samples_inside_the_ranges_and_repeats_with_its_seed(tmp_path, capsys):
    spec = hparams.load_spec(write_spec(tmp_path, RANDOM))
    points = spec.points()
    assert len(points) == 6 and points == spec.points()  # sample_seed: the same points again
    for point in points:
        assert 1e-5 <= point["optimizer.init_args.lr"] <= 1e-1
        assert 0.0 <= point["optimizer.init_args.weight_decay"] <= 0.5
        assert isinstance(point["data.init_args.batch_size"], int) and 16 <= point["data.init_args.batch_size"] <= 32
        assert point["trainer.gradient_clip_val"] in (0.5, 1.0)
    assert len({p["optimizer.init_args.lr"] for p in points}) == 6
    assert add(tmp_path, write_spec(tmp_path, RANDOM), "rand", "--dry-run") == 0
    assert "6 versions (random search, 6 samples); nothing written" in capsys.readouterr().out
    assert not (tmp_path / "config").exists()


@pytest.mark.parametrize("text,message", [
    ("optimizer.init_args.lr: {uniform: [0.1, 0.2]}\n", "a grid cannot enumerate"),
    ("run.version: [a, b]\n", "identity"),
    ("optimiser.init_args.lr: [0.1]\n", "starts with no section"),
    ("optimizer.init_args.lr: []\n", "at least one value"),
    ("samples: 2\noptimizer.init_args.lr: {normal: [0, 1]}\n", "one key out of"),
    ("samples: 2\noptimizer.init_args.lr: {log_uniform: [0, 1]}\n", "low > 0"),
    ("seeds: [0, x]\noptimizer.init_args.lr: [0.1]\n", "seeds must be a list of different integers"),
    ("seeds: [0, 0]\noptimizer.init_args.lr: [0.1]\n", "seeds must be a list of different integers"),
    ("samples: 0\noptimizer.init_args.lr: [0.1]\n", "samples must be a positive integer"),
    ("optimizer.init_args.lr: [0.1, 0.1]\n", "lists a value twice"),
    ("optimizer.init_args: [{lr: 0.1}]\noptimizer.init_args.lr: [0.1]\n", "overlap"),
    ("seeds: [1]\n", "names no hyperparameter"),
    ("optimizer.init_args.lr: [0.1\n", "not valid YAML"),
    ("- just a list\n", "must map config keys"),
])
def test_bad_spec_is_refused_and_nothing_is_written(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        add(tmp_path, write_spec(tmp_path, text))
    assert not (tmp_path / "config").exists()


def test_keys_are_checked_against_every_setting_the_config_takes(tmp_path, capsys):
    with pytest.raises(UsageError, match="template.yaml has no setting optimizer.init_args.lrr "
                                         r"\(did you mean optimizer.init_args.lr\?\)"):
        add(tmp_path, write_spec(tmp_path, "optimizer.init_args.lr: [0.1]\noptimizer.init_args.lrr: [0.1]\n"))
    assert not (tmp_path / "config").exists()
    # not in template.yaml, but an argument of its AdamW: found in main.py's whole config
    assert add(tmp_path, write_spec(tmp_path, "optimizer.init_args.amsgrad: [true, false]\n")) == 0
    assert version_yaml(tmp_path, 1)["optimizer"]["init_args"]["amsgrad"] is False
    # a swapped class brings arguments of its own: not checked here, main.py checks them when a version runs
    swap = "optimizer.class_path: [torch.optim.SGD]\noptimizer.init_args.momentum: [0.9]\n"
    assert add(tmp_path, write_spec(tmp_path, swap), "sgd") == 0


def test_missing_spec_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "sh" / "hparams.py"), "-e", "exp",
                             "-s", str(tmp_path / "none.yaml"), "-c", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("ERROR: search spec") and len(result.stderr.strip().splitlines()) == 1


def test_two_processes_adding_versions_at_once_never_share_a_folder(tmp_path):
    spec = write_spec(tmp_path, GRID)
    create_experiment("exp", 1, tmp_path / "config", PROJECT_ROOT / "config" / "template.yaml")
    command = [sys.executable, str(PROJECT_ROOT / "sh" / "hparams.py"), "-e", "exp", "-s", str(spec),
               "-c", str(tmp_path / "config")]
    workers = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(2)]
    assert [worker.wait() for worker in workers] == [0, 0]
    assert version_numbers(tmp_path / "config" / "exp") == list(range(17))
    points = []
    for k in range(1, 17):
        text = (tmp_path / "config" / "exp" / f"version_{k}" / "version.yaml").read_text()
        assert text.startswith(f"# exp/version_{k}: only the keys")  # one writer per folder
        points.append(yaml.safe_dump(yaml.safe_load(text)))
    assert len(set(points)) == 8 and all(points.count(point) == 2 for point in points)  # each process's 8 points


def test_hparams_folds_writes_one_version_per_point_and_fold(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("optimizer.init_args.lr: [1.0e-3, 1.0e-2]\n")
    config = tmp_path / "config"
    assert hparams.main(["-e", "cv", "-s", str(spec), "--folds", "3", "-c", str(config)]) == 0
    written = [yaml.safe_load((config / "cv" / f"version_{k}" / "version.yaml").read_text()) for k in range(6)]
    assert [(v["optimizer"]["init_args"]["lr"], v["data"]["init_args"]["fold"]) for v in written] == [
        (lr, fold) for lr in (1e-3, 1e-2) for fold in range(3)]
    assert {v["data"]["init_args"]["n_folds"] for v in written} == {3}
    assert "run them: python sh/run.py -e cv -b 0 -t 6" in capsys.readouterr().out
    assert hparams.main(["-e", "cv_alone", "--folds", "3", "-c", str(config)]) == 0  # share.yaml, 3 times
    assert len(list((config / "cv_alone").glob("version_*/version.yaml"))) == 3


def test_hparams_folds_below_two_or_without_anything_to_write_is_refused(tmp_path):
    with pytest.raises(UsageError, match="--folds must be at least 2"):
        hparams.main(["-e", "cv", "--folds", "1", "-c", str(tmp_path / "config")])
    with pytest.raises(UsageError, match="say what to write"):
        hparams.main(["-e", "cv", "-c", str(tmp_path / "config")])
    assert not (tmp_path / "config" / "cv").exists()


def test_a_grid_of_more_versions_than_one_command_writes_is_refused_before_any_is(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text(f"optimizer.init_args.lr: {[i / 1000 for i in range(1, 101)]}\n"
                    f"data.init_args.batch_size: {list(range(1, 51))}\n")
    with pytest.raises(UsageError, match="10000 versions .points x seeds x folds. is more than one command writes"):
        hparams.main(["-e", "huge", "-s", str(spec), "-c", str(tmp_path / "config"), "--folds", "2"])
    assert not (tmp_path / "config").exists()
