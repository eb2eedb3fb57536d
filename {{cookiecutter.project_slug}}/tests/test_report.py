"""sh/report.py turns fabricated run folders into a table, CSV files and plots, whatever state they are in."""
import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

import report
from _experiments import UsageError, add_version, ensure_experiment
from conftest import PROJECT_ROOT
from runtime.run_folder import RunPaths, run_summary, try_lock

TEMPLATE = PROJECT_ROOT / "config" / "template.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def untrained_settings_from_the_yaml_files(request, monkeypatch):
    """Versions not run yet: their share.yaml and version.yaml laid over each other, instead of asking main.py's
    parser in a subprocess (seconds each); the test named below asks the parser itself."""
    if request.node.name == "test_versions_not_run_yet_show_the_settings_main_py_would_merge_for_them":
        return

    def merged_yaml_files(arg_lists):
        return [merged(*(yaml.safe_load(open(args[i + 1])) or {} for i in (1, 3))) for args in arg_lists]

    monkeypatch.setattr(report, "merged_configs", merged_yaml_files)


def make_sweep(tmp_path, name="sweep"):
    """version_k: lr in (0.001, 0.01) x seeds (0, 1), then version_4 (lr 0.1): results under tmp_path/res."""
    experiment_dir, _ = ensure_experiment(name, tmp_path / "config", TEMPLATE)
    share = experiment_dir / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {tmp_path / 'res'}\n", 1))
    for lr, seed in [(0.001, 0), (0.001, 1), (0.01, 0), (0.01, 1), (0.1, 0)]:
        add_version(experiment_dir, f"optimizer:\n  init_args:\n    lr: {lr}\nseed_everything: {seed}\n")
    return experiment_dir


def merged(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` key by key: the config.yaml a fabricated run trained with."""
    result = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = merged(result[key], value) if both else value
    return result


def fabricate(tmp_path, k, status, best=None, test=None, epochs=3, experiment="sweep", **manifest):
    """The files a run leaves: config.yaml, manifest.json, metrics.json, history.csv (val/acc rising to ``best``)."""
    run_dir = tmp_path / "res" / experiment / f"version_{k}"
    run_dir.mkdir(parents=True)
    configs = tmp_path / "config" / experiment
    trained = merged(yaml.safe_load((configs / "share.yaml").read_text()),
                     yaml.safe_load((configs / f"version_{k}" / "version.yaml").read_text()) or {})
    (run_dir / "config.yaml").write_text(yaml.safe_dump(trained))
    (run_dir / "manifest.json").write_text(json.dumps({"status": status, "duration_s": 10.0 + k, **manifest}))
    if best is not None:
        fit = {"status": "finished", "monitor": "val/acc", "best_score": best, "epochs": epochs}
        (run_dir / "metrics.json").write_text(json.dumps({"fit": fit, "test": {"test/acc": test, "test/loss": 0.5}}))
        rows = ["epoch,step,val/acc,val/loss"]
        rows += [f"{e},{10 * (e + 1)},{best * (e + 1) / epochs},1.0" for e in range(epochs)]
        (run_dir / "history.csv").write_text("\n".join(rows) + "\n")
    return run_dir


def test_table_groups_seeds_into_mean_and_std_and_writes_csv_and_plots(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.80, test=0.78)
    fabricate(tmp_path, 1, "finished", best=0.90, test=0.88)
    fabricate(tmp_path, 2, "finished", best=0.60, test=0.58)
    fabricate(tmp_path, 3, "running", best=None)  # killed: nobody holds its lock
    (tmp_path / "res" / "sweep" / "version_4").mkdir()
    (tmp_path / "res" / "sweep" / "version_4" / "run.log").write_text("ERROR: bad config\n")  # failed before fit
    out_dir = tmp_path / "report"
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "0.8500 ± 0.0707" in printed and "0.8300 ± 0.0707" in printed  # lr 0.001: best and test over 2 seeds
    assert "killed" in printed and "failed" in printed

    with open(out_dir / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [r["status"] for r in runs] == ["finished", "finished", "finished", "killed", "failed"]
    assert runs[1]["optimizer.init_args.lr"] == "0.001" and runs[1]["seed_everything"] == "1"
    assert float(runs[1]["best val/acc"]) == 0.9 and float(runs[1]["test/acc"]) == 0.88
    with open(out_dir / "groups.csv", newline="") as f:
        groups = {g["optimizer.init_args.lr"]: g for g in csv.DictReader(f)}
    assert groups["0.001"]["versions"] == "version_0 version_1" and groups["0.001"]["finished"] == "2"
    assert float(groups["0.001"]["best val/acc mean"]) == pytest.approx(0.85)
    assert groups["0.01"]["finished"] == "1" and groups["0.01"]["best val/acc std"] == ""
    for png in ("curves.png", "val-acc_vs_optimizer.init_args.lr.png"):
        assert (out_dir / png).read_bytes().startswith(PNG)
    assert not (out_dir / "val-acc_vs_seed_everything.png").exists()  # seeds are averaged, not plotted


def test_a_report_that_fails_while_writing_keeps_the_previous_files_whole(tmp_path, monkeypatch):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config")]) == 0
    out_dir = tmp_path / "res" / "sweep" / "report"
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}

    real_writer = csv.writer

    class StopsAfterTheHeader:
        def __init__(self, f, **kwargs):
            self.inner = real_writer(f, **kwargs)

        def writerow(self, row):
            self.inner.writerow(row)

        def writerows(self, rows):
            raise RuntimeError("stopped after the header")

    monkeypatch.setattr(csv, "writer", StopsAfterTheHeader)
    with pytest.raises(RuntimeError, match="stopped after the header"):
        report.main(["-e", "sweep", "-c", str(tmp_path / "config")])
    assert {path.name: path.read_bytes() for path in out_dir.iterdir()} == before  # no half file, no temporary


def test_default_output_folder_is_the_experiments_results(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config")]) == 0
    assert (tmp_path / "res" / "sweep" / "report" / "runs.csv").is_file()


def test_a_running_version_whose_lock_is_held_is_shown_running(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    run_dir = fabricate(tmp_path, 1, "running")
    held = try_lock(run_dir / ".lock")
    try:
        report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")])
    finally:
        os.close(held)
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)][:2] == ["finished", "running"]


def test_broken_run_files_never_crash_the_report(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    broken = fabricate(tmp_path, 1, "finished", best=0.9, test=0.9)
    (broken / "metrics.json").write_text("{not json")
    (broken / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "config" / "sweep" / "version_2" / "version.yaml").write_text("run: [unclosed\n")
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    assert "bad config" in capsys.readouterr().out


def test_run_files_of_an_older_project_are_read_for_what_they_hold(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    older = fabricate(tmp_path, 1, "finished", best=0.9, test=0.9)
    (older / "manifest.json").write_text(json.dumps({"status": "finished"}))  # no times, devices, memory
    (older / "metrics.json").write_text(json.dumps({"fit": {"best_score": 0.9}}))  # no monitor, mode, epochs, test
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr().out
    assert "version_1" in shown and "0.9" in shown
    summary = run_summary(RunPaths(tmp_path / "res", "sweep", "version_1"))  # what sh/run.py's table reads
    assert summary["best_score"] == 0.9 and summary["test"] == {}


def test_several_experiments_in_one_report(tmp_path, capsys):
    make_sweep(tmp_path, "one")
    make_sweep(tmp_path, "two")
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7, experiment="one")
    fabricate(tmp_path, 0, "finished", best=0.6, test=0.5, experiment="two")
    assert report.main(["-e", "one", "-e", "two", "-c", str(tmp_path / "config")]) == 0
    assert "one/version_0" in capsys.readouterr().out
    with open(tmp_path / "res" / "report" / "runs.csv", newline="") as f:
        assert {r["experiment"] for r in csv.DictReader(f)} == {"one", "two"}


def test_all_ex_names_the_experiments_it_leaves_out(tmp_path, capsys):
    make_sweep(tmp_path, "done")
    make_sweep(tmp_path, "untrained")
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7, experiment="done")
    assert report.main(["--all_ex", "-c", str(tmp_path / "config")]) == 0
    assert "note: left out (no finished runs): untrained" in capsys.readouterr().out
    with open(tmp_path / "res" / "done" / "report" / "runs.csv", newline="") as f:
        assert {r["experiment"] for r in csv.DictReader(f)} == {"done"}


def test_experiment_without_finished_runs_is_one_error_line_and_exit_2(tmp_path):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "failed")
    with pytest.raises(UsageError, match="sweep has no finished runs"):
        report.main(["-e", "sweep", "-c", str(tmp_path / "config")])
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "sh" / "report.py"), "-e", "sweep",
                             "-c", str(tmp_path / "config")], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ERROR: sweep has no finished runs")
    assert not (tmp_path / "res" / "sweep" / "report").exists()


def test_settings_come_from_what_each_run_trained_with(tmp_path, capsys):
    experiment = make_sweep(tmp_path)
    for k in (0, 1):
        fabricate(tmp_path, k, "finished", best=0.8, test=0.7)
    trained = yaml.safe_load((experiment / "share.yaml").read_text())
    trained["optimizer"]["init_args"]["lr"] = 0.5  # as if given with run.py -o "--optimizer.init_args.lr=0.5"
    trained["seed_everything"] = 1
    trained["trainer"]["logger"] = {"init_args": {"version": "version_1"}}  # routed per run: not a setting
    (tmp_path / "res" / "sweep" / "version_1" / "config.yaml").write_text(yaml.safe_dump(trained))
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [r["optimizer.init_args.lr"] for r in runs[:2]] == ["0.001", "0.5"]
    with open(tmp_path / "out" / "groups.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    assert [g["versions"] for g in groups][:2] == ["version_0", "version_1"]  # different lr: not one seed group
    assert "trainer.logger.init_args.version" not in runs[0]


def test_a_metric_that_was_never_logged_is_refused(tmp_path):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    never = "metric val/nonexist was never logged by these runs .logged: val/acc, val/loss"
    with pytest.raises(UsageError, match=never):
        report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--metric", "val/nonexist"])


def test_a_metric_only_unfinished_runs_logged_is_tabled_without_a_plot_of_the_settings(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    killed = fabricate(tmp_path, 2, "killed", best=0.6, test=0.5)
    (killed / "history.csv").write_text("epoch,step,val/acc,val/f1\n0,10,0.6,0.55\n")
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--metric", "val/f1"]) == 0
    assert "killed" in capsys.readouterr().out
    out_dir = tmp_path / "res" / "sweep" / "report"
    assert (out_dir / "curves.png").is_file() and not list(out_dir.glob("val-f1_vs_*.png"))


def test_experiments_named_and_all_ex_together_are_refused(tmp_path):
    make_sweep(tmp_path)
    with pytest.raises(UsageError, match="not both"):
        report.main(["-e", "sweep", "--all_ex", "-c", str(tmp_path / "config")])


def test_versions_not_run_yet_show_the_settings_main_py_would_merge_for_them(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [r["status"] for r in runs] == ["finished"] + ["not run"] * 4
    assert [r["optimizer.init_args.lr"] for r in runs] == ["0.001", "0.001", "0.01", "0.01", "0.1"]
    assert runs[4]["trainer.fast_dev_run"] == "False"  # a default only jsonargparse knows for an untrained version


def test_a_metric_monitored_with_mode_min_is_best_when_lowest(tmp_path, capsys):
    make_sweep(tmp_path)
    for k, losses in ((0, "0.9,0.5,0.7"), (1, "0.8,0.6,0.4")):
        run_dir = fabricate(tmp_path, k, "finished", best=0.5, test=0.5)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["fit"].update(monitor="val/loss", mode="min", best_score=min(map(float, losses.split(","))))
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        rows = [f"{e},{10 * (e + 1)},0.5,{loss}" for e, loss in enumerate(losses.split(","))]
        (run_dir / "history.csv").write_text("epoch,step,val/acc,val/loss\n" + "\n".join(rows) + "\n")
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [float(r["best val/loss"]) for r in runs[:2]] == [0.5, 0.4]


def read_rows(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_folds_of_a_setting_are_averaged_like_seeds(tmp_path, capsys):
    experiment_dir, _ = ensure_experiment("cv", tmp_path / "config", TEMPLATE)
    share = experiment_dir / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {tmp_path / 'res'}\n", 1))
    scores = {0.001: [0.80, 0.84, 0.82], 0.01: [0.60, 0.64, None]}  # fold 2 of lr 0.01 failed
    k = 0
    for lr, by_fold in scores.items():
        for fold, score in enumerate(by_fold):
            add_version(experiment_dir, f"optimizer:\n  init_args:\n    lr: {lr}\n"
                                        f"data:\n  init_args:\n    fold: {fold}\n    n_folds: 3\n")
            fabricate(tmp_path, k, "finished" if score else "failed", best=score, test=score, experiment="cv")
            k += 1
    assert report.main(["-e", "cv", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "mean ± std over folds" in printed and "0.8200 ± 0.0200" in printed
    groups = read_rows(tmp_path / "out" / "groups.csv")
    assert [(g["optimizer.init_args.lr"], g["finished"]) for g in groups] == [("0.001", "3"), ("0.01", "2")]
    assert "data.init_args.fold" not in groups[0] and float(groups[1]["best val/acc mean"]) == pytest.approx(0.62)


def test_baseline_pairs_runs_by_seed_finds_a_planted_difference_and_says_n_too_small(tmp_path, capsys):
    make_sweep(tmp_path)  # lr 0.001 (seeds 0, 1), lr 0.01 (seeds 0, 1), lr 0.1 (seed 0)
    for k, best in enumerate([0.80, 0.82, 0.50, 0.51, 0.9]):
        fabricate(tmp_path, k, "finished", best=best, test=best)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out"),
                        "--baseline", "lr=0.001"]) == 0
    printed = capsys.readouterr().out
    assert "against the baseline lr=0.001" in printed and "paired t-test" in printed and "n too small" in printed
    rows = {row["optimizer.init_args.lr"]: row for row in read_rows(tmp_path / "out" / "comparison.csv")}
    assert set(rows) == {"0.01", "0.1"}  # the baseline is not compared with itself
    planted = rows["0.01"]
    assert planted["test"] == "paired t-test" and (planted["n"], planted["n_baseline"]) == ("2", "2")
    assert float(planted["difference"]) == pytest.approx(-0.305)
    assert float(planted["ci_low"]) < -0.305 < float(planted["ci_high"]) < 0 and float(planted["p_value"]) < 0.05
    assert planted["ci_excludes_0"] == "True" and planted["verdict"] == "worse"
    assert rows["0.1"]["test"] == "n too small" and rows["0.1"]["difference"] == "" and rows["0.1"]["n"] == "1"


def test_baseline_without_matching_seeds_uses_welchs_test_and_a_version_can_name_it(tmp_path, capsys):
    experiment_dir = make_sweep(tmp_path)
    for seed in (5, 6):  # lr 0.1 again, with seeds the baseline never ran
        add_version(experiment_dir, f"optimizer:\n  init_args:\n    lr: 0.1\nseed_everything: {seed}\n")
    for k, best in enumerate([0.80, 0.82, 0.81, 0.80, 0.79, 0.80, 0.83]):
        fabricate(tmp_path, k, "finished", best=best, test=best)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out"),
                        "--baseline", "version_1"]) == 0
    rows = {row["optimizer.init_args.lr"]: row for row in read_rows(tmp_path / "out" / "comparison.csv")}
    assert rows["0.01"]["test"] == "paired t-test" and rows["0.1"]["test"] == "Welch's t-test"
    assert rows["0.1"]["n"] == "3" and rows["0.1"]["ci_excludes_0"] == "False"
    assert rows["0.1"]["verdict"] == "no clear difference" and float(rows["0.1"]["p_value"]) > 0.05


@pytest.mark.parametrize("baseline, message", [
    ("version_9", "no such version"),
    ("dropout=0.1", "'dropout' names 0 of the settings that vary"),
    ("lr=0.5", "matches 0 settings"),
    ("lr", "is not key=value"),
])
def test_a_baseline_that_names_no_single_setting_is_one_error(tmp_path, baseline, message):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7)
    with pytest.raises(UsageError, match=message):
        report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--baseline", baseline])


def test_cost_columns_count_gpu_hours_as_devices_times_hours(tmp_path, capsys):
    make_sweep(tmp_path)
    fabricate(tmp_path, 0, "finished", best=0.8, test=0.7, accelerator="cuda", num_devices=2, duration_s=1800,
              peak_memory_mb=900.0)
    fabricate(tmp_path, 1, "finished", best=0.8, test=0.7, accelerator="cuda", num_devices=2, duration_s=3600,
              peak_memory_mb=1200.0)
    fabricate(tmp_path, 2, "finished", best=0.6, test=0.5, accelerator="cpu", num_devices=1)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--out", str(tmp_path / "out")]) == 0
    runs = read_rows(tmp_path / "out" / "runs.csv")
    assert [r["gpu_hours"] for r in runs[:4]] == ["1.0", "2.0", "0.0", ""]  # version_3 never ran
    group = read_rows(tmp_path / "out" / "groups.csv")[0]
    assert (float(group["gpu_hours"]), float(group["peak_memory_mb"])) == (3.0, 1200.0)
    assert float(group["median_duration_s"]) == 2700.0


def test_html_report_holds_the_tables_and_every_figure(tmp_path, capsys):
    make_sweep(tmp_path)
    for k, best in enumerate([0.80, 0.82, 0.50, 0.51]):
        fabricate(tmp_path, k, "finished", best=best, test=best)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--baseline", "0", "--html"]) == 0
    page = (tmp_path / "res" / "sweep" / "report.html").read_text()
    figures = sorted((tmp_path / "res" / "sweep" / "report").glob("*.png"))
    assert len(figures) == 2 and page.count('src="data:image/png;base64,') == len(figures)
    for title in ("<h2>runs</h2>", "<h2>settings: mean ± std over seeds</h2>", "against the baseline"):
        assert title in page
    assert 'class="worse"' in page and "paired t-test" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: it opens offline


def test_latex_table_holds_the_settings_means_bolds_the_best_and_daggers_significant_differences(tmp_path, capsys):
    make_sweep(tmp_path)  # lr 0.001 (seeds 0, 1), lr 0.01 (seeds 0, 1), lr 0.1 (seed 0)
    for k, (best, test) in enumerate([(0.80, 0.78), (0.82, 0.80), (0.90, 0.88), (0.91, 0.89), (0.5, 0.9)]):
        fabricate(tmp_path, k, "finished", best=best, test=test)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config"), "--baseline", "lr=0.001", "--latex"]) == 0
    table = (tmp_path / "res" / "sweep" / "report.tex").read_text()
    assert "needs \\usepackage{booktabs}" in table and "\\label{tab:sweep}" in table
    rows = table.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0].splitlines()
    body = [line.strip() for line in rows if line.strip()]
    header = table.split("\\toprule\n", 1)[1].splitlines()[0].strip()
    assert header == "lr & best val/acc & test/acc & $n$ \\\\"
    assert [line.count(" & ") for line in body] == [3, 3, 3]
    assert body[0] == "0.001 (baseline) & $0.8100 \\pm 0.0141$ & $0.7900 \\pm 0.0141$ & 2 \\\\"
    # lr 0.01 beats the baseline on both seeds (paired: its 95 % interval excludes 0): bold best and a dagger
    assert body[1] == "0.01 & $\\mathbf{0.9050 \\pm 0.0071}^{\\dagger}$ & $0.8850 \\pm 0.0071$ & 2 \\\\"
    assert body[2] == "0.1 & $0.5000$ & $\\mathbf{0.9000}$ & 1 \\\\"  # one run: no std, no test against it
    assert "(paired t-test)" in table


def test_latex_escapes_what_latex_would_read_as_commands():
    from _report_latex import escape

    assert escape("data.init_args.batch_size") == "data.init\\_args.batch\\_size"
    assert escape("50% & $x#{y}~^\\") == ("50\\% \\& \\$x\\#\\{y\\}\\textasciitilde{}\\textasciicircum{}"
                                         "\\textbackslash{}")


def test_every_figure_is_also_a_one_column_pdf_with_embedded_fonts_and_an_svg(tmp_path, capsys):
    make_sweep(tmp_path)
    for k, best in enumerate([0.80, 0.82, 0.50, 0.51]):
        fabricate(tmp_path, k, "finished", best=best, test=best)
    assert report.main(["-e", "sweep", "-c", str(tmp_path / "config")]) == 0
    folder = tmp_path / "res" / "sweep" / "report"
    for stem in ("curves", "val-acc_vs_optimizer.init_args.lr"):
        pdf, svg = (folder / f"{stem}.pdf").read_bytes(), (folder / f"{stem}.svg").read_text()
        assert pdf.startswith(b"%PDF") and b"/MediaBox [ 0 0 252 " in pdf  # 3.5 in: one column
        assert b"/FontFile2" in pdf and b"/Subtype /Type3" not in pdf  # TrueType, embedded
        assert 'width="252pt"' in svg and "<text" not in svg  # text drawn as paths
