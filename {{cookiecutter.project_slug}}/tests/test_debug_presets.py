"""Each config/debug preset stacks onto the first experiment, keeps share.yaml's callbacks and has its effect."""
import json

import pytest
import yaml
from pytorch_lightning.callbacks import ModelSummary, device_stats_monitor

from conftest import PROJECT_ROOT
from main import main
from runtime import cli
from runtime.callbacks import GradientNormMonitor

EXPERIMENT = "{{ cookiecutter.experiment_name }}"
LOGGER = "{{ cookiecutter.logger }}"
SHARE = PROJECT_ROOT / "config" / EXPERIMENT / "share.yaml"
CONFIGS = ["-c", str(SHARE), "-c", str(PROJECT_ROOT / "config" / EXPERIMENT / "version_0" / "version.yaml")]
PRESETS = sorted(path.stem for path in (PROJECT_ROOT / "config" / "debug").glob("*.yaml"))
SHARE_CALLBACKS = [c["class_path"].rsplit(".", 1)[-1]
                   for c in yaml.safe_load(SHARE.read_text())["trainer"]["callbacks"]]


def preset(name):
    return ["-c", str(PROJECT_ROOT / "config" / "debug" / f"{name}.yaml")]


def test_presets_append_callbacks_instead_of_replacing_share_yaml_s(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["fit", *CONFIGS, *preset("model_summary"), *preset("grad_norm"), "--print_config"])
    assert exit.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    callbacks = [c["class_path"].rsplit(".", 1)[-1] for c in printed["trainer"]["callbacks"]]
    assert callbacks == [*SHARE_CALLBACKS, "ModelSummary", "GradientNormMonitor"]
    assert "ModelCheckpoint" in callbacks


def found_batch_size(run):
    sizes = json.loads((run["dir"] / "batch_size_find.json").read_text())
    assert sizes["configured"] == run["configured_batch_size"]
    return sizes["found"]


def _train_batches(run):
    return len(run["datamodule"].train_dataloader())


# What each preset must visibly do to the run (the captured trainer, datamodule, metrics and run folder).
EFFECTS = {
    "fast_dev_run": lambda run: run["trainer"].global_step == min(5, _train_batches(run))
    and yaml.safe_load((run["dir"] / "config.yaml").read_text())["trainer"]["fast_dev_run"] == 5,  # what ran
    "overfit_batches": lambda run: run["trainer"].overfit_batches == 10
    and run["trainer"].global_step == min(10, _train_batches(run)),
    "limit_batches": lambda run: run["trainer"].global_step == min(10, _train_batches(run)),
    "num_sanity_val_steps": lambda run: run["trainer"].num_sanity_val_steps == 10,
    "profiler_simple": lambda run: (run["dir"] / "fit-profile_simple.txt").stat().st_size > 0,
    "profiler_advanced": lambda run: (run["dir"] / "fit-profile_advanced.txt").stat().st_size > 0,
    "profiler_pytorch": lambda run: (run["dir"] / "fit-profile_pytorch.txt").stat().st_size > 0,
    "device_stats": lambda run: any("cpu_percent" in key or "memory" in key for key in run["device_stats"]),
    "model_summary": lambda run: any(isinstance(c, ModelSummary) and c._max_depth == -1
                                     for c in run["trainer"].callbacks),
    "grad_norm": lambda run: run["trainer"].gradient_clip_val == 1.0
    and any(isinstance(c, GradientNormMonitor) for c in run["trainer"].callbacks)
    and "grad_2.0_norm_total" in run["fit_metrics"]
    and (LOGGER != "none" or "grad_2.0_norm_total" in run["progress_bar"]),  # shown where it can be seen
    "detect_anomaly": lambda run: run["trainer"]._detect_anomaly,
    # more steps than the run's one epoch holds: the range test is not cut short by max_epochs
    "lr_find": lambda run: len(json.loads((run["dir"] / "lr_find.json").read_text())["lr"]) > _train_batches(run),
    "batch_size_find": lambda run: found_batch_size(run) >= run["configured_batch_size"]  # searched upwards
    and run["datamodule"].batch_size == found_batch_size(run),
}
# Arguments after the preset: a preset meant for long runs stays short.
AFTER_PRESET = {"overfit_batches": ["--trainer.max_epochs=1"]}


def test_every_preset_has_an_effect_check():
    assert sorted(EFFECTS) == PRESETS


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_preset_stacks_onto_the_first_experiment_and_runs(name, tmp_path, fast_args, monkeypatch, capsys):
    run = {"dir": tmp_path / "res" / EXPERIMENT / "debug", "device_stats": []}
    after_fit = cli.ResearchCLI.after_fit
    prefix_keys = device_stats_monitor._prefix_metric_keys

    def record_device_stats(stats, *args):
        run["device_stats"].extend(stats)
        return prefix_keys(stats, *args)

    def capture(cli):
        run.update(trainer=cli.trainer, datamodule=cli.datamodule, fit_metrics=dict(cli.trainer.callback_metrics),
                   progress_bar=dict(cli.trainer.progress_bar_metrics),
                   configured_batch_size=cli.config["fit"]["data"]["init_args"]["batch_size"])
        after_fit(cli)

    monkeypatch.setattr(cli.ResearchCLI, "after_fit", capture)
    monkeypatch.setattr(device_stats_monitor, "_prefix_metric_keys", record_device_stats)
    status = main(["fit", *CONFIGS, *fast_args, *preset(name),
                   *AFTER_PRESET.get(name, [])])
    if name == "device_stats" and LOGGER == "none":
        assert status == 1 and "ERROR: callback DeviceStatsMonitor logs through the logger" in capsys.readouterr().err
        return
    assert status == 0
    kept = {type(c).__name__ for c in run["trainer"].callbacks}
    assert set(SHARE_CALLBACKS) <= kept, f"{name} dropped share.yaml callbacks"
    assert EFFECTS[name](run), f"{name} had no visible effect"


def test_a_debug_run_goes_to_the_scratch_folder_and_leaves_the_version_s_results_alone(tmp_path, fast_args):
    version_0 = tmp_path / "res" / EXPERIMENT / "version_0"
    version_0.mkdir(parents=True)
    (version_0 / "metrics.json").write_text('{"fit": {"status": "finished"}}')
    for _ in range(2):  # the second debug run replaces the first without asking
        assert main(["fit", *CONFIGS, *fast_args, *preset("fast_dev_run")]) == 0
    assert (tmp_path / "res" / EXPERIMENT / "debug" / "manifest.json").is_file()
    assert [p.name for p in version_0.iterdir()] == ["metrics.json"]
