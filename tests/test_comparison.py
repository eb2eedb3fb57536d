"""Research-grade comparison and cluster runs, tried in a digits bake as a new user would: 5-fold versions over
a 2-point grid, report.py --baseline on a planted difference and on a setting with no effect, the HTML report in
a real headless browser, SLURM job arrays through submitit's local executor (one task preempted and requeued),
shell completion, and .env values reaching the run."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import bake, run, run_python

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("comparison")]  # one worker: the trained runs are shared

QUIET = "--trainer.enable_progress_bar=false --trainer.enable_model_summary=false"
SHORT = f"--trainer.max_epochs=2 {QUIET}"


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp", hparam_search="grid")


def sh(project, *args, timeout=900):
    done = run_python([project / "sh" / args[0], *args[1:]], project, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def write_spec(project, name, text):
    path = project / "config" / "search" / name
    path.write_text(text)
    return str(path.relative_to(project))


def rows(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_five_folds_over_a_two_point_grid_run_ten_versions_reported_as_fold_means(project):
    spec = write_spec(project, "cv.yaml", "optimizer.init_args.lr: [3.0e-3, 1.0e-2]\n")
    printed = sh(project, "hparams.py", "-e", "cv", "-s", spec, "--folds", "5")
    assert "10 versions (grid, 5 folds each)" in printed
    sh(project, "run.py", "-e", "cv", "--all_ver", "--jobs", "2", "-o", f"--trainer.max_epochs=1 {QUIET}")
    folds = [json.loads((project / "res" / "cv" / f"version_{k}" / "manifest.json").read_text())["config"]["data"]
             ["init_args"] for k in range(10)]
    assert [(f["fold"], f["n_folds"]) for f in folds] == [(i % 5, 5) for i in range(10)]
    printed = sh(project, "report.py", "-e", "cv")
    assert "mean ± std over folds" in printed
    groups = rows(project / "res" / "cv" / "report" / "groups.csv")
    assert [(g["optimizer.init_args.lr"], g["finished"]) for g in groups] == [("0.003", "5"), ("0.01", "5")]
    assert all(float(g["best val/acc std"]) > 0 for g in groups)  # five different validation folds
    assert [g["versions"].split() for g in groups] == [[f"version_{k}" for k in range(5)],
                                                        [f"version_{k}" for k in range(5, 10)]]


@pytest.fixture(scope="module")
def planted(project):
    """Three settings, three seeds each: the template's lr (log every 10 steps: the baseline), the same logging
    every step (no effect on training), and lr 1e-7 (cannot learn); plus lr 0.003 once. Trained and reported."""
    sh(project, "hparams.py", "-e", "planted", "-s",
       write_spec(project, "logging.yaml", "trainer.log_every_n_steps: [10, 1]\nseeds: [0, 1, 2]\n"))
    sh(project, "hparams.py", "-e", "planted", "-s",
       write_spec(project, "stuck.yaml", "optimizer.init_args.lr: [1.0e-7]\nseeds: [0, 1, 2]\n"))
    sh(project, "hparams.py", "-e", "planted", "-s",
       write_spec(project, "once.yaml", "optimizer.init_args.lr: [3.0e-3]\nseeds: [0]\n"))
    sh(project, "run.py", "-e", "planted", "--all_ver", "--jobs", "2", "-o", SHORT)
    printed = sh(project, "report.py", "-e", "planted", "--baseline", "lr=0.001,log_every_n_steps=10", "--html")
    return printed, {(row["optimizer.init_args.lr"], row["trainer.log_every_n_steps"]): row
                     for row in rows(project / "res" / "planted" / "report" / "comparison.csv")}


def test_baseline_finds_the_planted_difference_significant(planted):
    printed, compared = planted
    stuck = compared[("1e-07", "10")]
    assert stuck["test"] == "paired t-test" and (stuck["n"], stuck["n_baseline"]) == ("3", "3")
    assert float(stuck["difference"]) < -0.3 and float(stuck["ci_high"]) < 0 and float(stuck["p_value"]) < 0.05
    assert stuck["ci_excludes_0"] == "True" and stuck["verdict"] == "worse"
    assert printed.count("yes, worse") == 1 and "paired t-test" in printed


def test_baseline_finds_no_difference_where_the_setting_does_not_touch_training(planted):
    _, compared = planted
    logging = compared[("0.001", "1")]
    assert logging["test"] == "paired t-test" and logging["ci_excludes_0"] == "False"
    assert logging["verdict"] == "no clear difference" and float(logging["p_value"]) > 0.05


def test_with_one_run_a_side_the_report_says_n_too_small(planted):
    printed, compared = planted
    once = compared[("0.003", "10")]
    assert (once["test"], once["n"], once["difference"]) == ("n too small", "1", "")
    assert re.search(r"│ 1 vs 3 +│ n too small", printed), printed[-3000:]


def browser():
    """A headless Chromium driven by selenium, or a skip saying why there is none."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: Debian's chromium and chromium-driver are not installed "
                    "(scripts/install_test_tools.sh, run by make test, installs them where apt-get may)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def test_the_html_report_renders_in_headless_chromium_with_every_image_loaded(project, planted, tmp_path):
    page = project / "res" / "planted" / "report.html"
    figures = list((project / "res" / "planted" / "report").glob("*.png"))
    driver = browser()
    try:
        driver.get(page.as_uri())
        titles = [element.text for element in driver.find_elements("tag name", "h2")]
        assert titles[:3] == ["runs", "settings: mean ± std over seeds", titles[2]] and "baseline" in titles[2]
        cells = [element.text for element in driver.find_elements("css selector", "td.worse")]
        assert cells == ["yes, worse"]
        images = driver.execute_script(
            "return Array.from(document.images).map(image => [image.complete, image.naturalWidth])")
        assert len(images) == len(figures) >= 3 and all(done and width > 0 for done, width in images)
        assert driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_submitit_runs_two_versions_and_a_preempted_one_finishes_from_its_checkpoint(project):
    import psutil

    epochs = 8
    command = [sys.executable, "sh/run.py", "-e", "baseline", "-n", "0", "1", "--slurm", "--executor", "local",
               "--gpus-per-run", "0", "--wait", "-o", f"--trainer.max_epochs={epochs} {QUIET}"]
    runner = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = project / "res" / "baseline" / "version_0"
    deadline, sent = time.monotonic() + 300, False
    while not sent and time.monotonic() < deadline and runner.poll() is None:
        history = run_dir / "history.csv"
        if history.is_file() and len(history.read_text().splitlines()) >= 3:  # two epochs done: preempt it
            task = psutil.Process(json.loads((run_dir / "manifest.json").read_text())["pid"]).parent()
            task.send_signal(signal.SIGUSR2)  # what SLURM sends before a time limit or preemption
            sent = True
        time.sleep(0.1)
    output = runner.communicate(timeout=600)[0]
    assert sent, output[-3000:]
    assert runner.returncode == 0, output[-3000:]
    assert "baseline/version_0: finished" in output and "baseline/version_1: finished" in output

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed_from"].endswith("last.ckpt")
    assert [attempt["status"] for attempt in manifest["earlier_attempts"]] == ["interrupted"]
    assert json.loads((run_dir / "metrics.json").read_text())["fit"]["epochs"] == epochs
    assert [int(row["epoch"]) for row in rows(run_dir / "history.csv")] == list(range(epochs))
    assert (run_dir / "run.log").read_text().count("$ ") == 2  # one log, both attempts
    job_logs = "".join(path.read_text() for path in (project / "res" / "slurm").glob("*/*_log.*"))
    assert "this job is preempted" in job_logs and "Requeued job" in job_logs
    other = json.loads((project / "res" / "baseline" / "version_1" / "manifest.json").read_text())
    assert other["status"] == "finished" and other["earlier_attempts"] == []

    again = run_python(["sh/run.py", "-e", "baseline", "-n", "0", "1", "--slurm", "--dry-run"], project)
    assert again.returncode == 0 and again.stdout.count("# not submitted") == 2, again.stdout


def test_tab_completion_prints_for_main_py_and_the_scripts(project, tmp_path):
    printed = sh(project, "completion.py", "bash")
    script = tmp_path / "completion.bash"
    script.write_text(printed)
    completing = f"""source {script}
COMP_WORDS=(./main.py fit --trainer.max_ep); COMP_CWORD=2; _shtab_main_py
echo "main.py: ${{COMPREPLY[*]}}"
COMP_WORDS=(sh/run.py --all_); COMP_CWORD=1; _shtab_run_py
echo "run.py: ${{COMPREPLY[*]}}"
"""
    done = run(["bash", "-c", completing], project)
    assert done.returncode == 0, done.stderr
    assert "main.py: --trainer.max_epochs" in done.stdout and "run.py: --all_ver --all_ex" in done.stdout
    assert os.access(project / "main.py", os.X_OK) and os.access(project / "sh" / "run.py", os.X_OK)


def test_env_file_values_reach_the_run(project, tmp_path):
    shared = tmp_path / "shared_datasets"
    (project / ".env").write_text(f"DATA_DIR={shared}\nWANDB_API_KEY=from-the-file\n")
    try:
        done = run_python(["main.py", "fit", "-c", "config/example.yaml", "--run.experiment=env_check",
                           "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
                           "--run.test_after_fit=false", *QUIET.split()], project)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert list((shared / "digits").glob("cache-*.pt")), "the digits cache goes to $DATA_DIR from .env"
        shown = [sys.executable, "-c", "import sys; sys.path[:0] = ['sh']; import _experiments, os; "
                 "print(os.environ['DATA_DIR'], os.environ['WANDB_API_KEY'])"]
        inherited = run(shown, project, env={**os.environ, "DATA_DIR": "/set/in/the/shell"})
        assert inherited.stdout.split() == ["/set/in/the/shell", "from-the-file"]  # the shell's value wins
    finally:
        (project / ".env").unlink()
    assert ".env" in (project / ".gitignore").read_text().splitlines()
