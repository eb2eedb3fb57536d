"""sh/run.py picks the versions each flag asks for, prints exact commands, and runs them safely.

Runs use a fake main.py command (a few lines of Python), so no test here trains a model.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

import _experiments
import _runner
import run
from _experiments import UsageError, Version, create_experiment, split_main_args
from conftest import PROJECT_ROOT
from runtime.preflight import GpuStatus
from runtime.run_folder import run_status, try_lock

TEMPLATE = PROJECT_ROOT / "config" / "template.yaml"


def make_experiment(tmp_path, name="exp", n_versions=4):
    """An experiment under tmp_path/config whose results go to tmp_path/res."""
    create_experiment(name, n_versions, tmp_path / "config", TEMPLATE)
    share = tmp_path / "config" / name / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {tmp_path / 'res'}\n", 1))
    return tmp_path / "config" / name


def dry_run(capsys, tmp_path, *args):
    """The command lines ``run.py --dry-run`` prints, split into argument lists (comments kept as text)."""
    assert run.main(["-c", str(tmp_path / "config"), "--dry-run", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return [line if line.startswith("#") else shlex.split(line) for line in lines]


def versions_in(commands):
    """The version numbers the printed commands train, in order."""
    return [int(cmd[cmd.index("fit") + 4].split("version_")[1].split("/")[0]) for cmd in commands]


def write_run(tmp_path, experiment, k, status=None, checkpoint=False, metrics=None):
    """Fabricate what a run leaves in res/<experiment>/version_k."""
    run_dir = tmp_path / "res" / experiment / f"version_{k}"
    run_dir.mkdir(parents=True)
    if status:
        (run_dir / "manifest.json").write_text(json.dumps({"status": status, "duration_s": 1.5}))
    if checkpoint:
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"fake")
    if metrics:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def test_v_prints_the_exact_fit_command_of_one_version(tmp_path, capsys):
    experiment = make_experiment(tmp_path)
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "2")
    assert command == [sys.executable, str(PROJECT_ROOT / "main.py"), "fit",
                       "-c", str(experiment / "share.yaml"), "-c", str(experiment / "version_2" / "version.yaml")]


def test_o_is_split_like_a_shell_and_passed_to_main(tmp_path, capsys):
    make_experiment(tmp_path)
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", "-o", "--trainer.max_epochs=3 --x.name 'a b'")
    assert command[-3:] == ["--trainer.max_epochs=3", "--x.name", "a b"]


@pytest.mark.parametrize("flag", ["-o", "--other_para"])
def test_o_takes_a_single_option_as_its_value(tmp_path, capsys, flag):
    make_experiment(tmp_path)
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", flag, "--trainer.max_epochs=3")
    assert command[-1] == "--trainer.max_epochs=3" and command[-2].endswith("version.yaml")


def test_o_given_twice_passes_both(tmp_path, capsys):
    make_experiment(tmp_path)
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0",
                        "-o", "--trainer.max_epochs=3", "-o", "--seed_everything=1")
    assert command[-2:] == ["--trainer.max_epochs=3", "--seed_everything=1"]


def test_all_ver_runs_every_version_of_the_experiment(tmp_path, capsys):
    make_experiment(tmp_path)
    make_experiment(tmp_path, "other", 2)
    assert versions_in(dry_run(capsys, tmp_path, "-e", "exp", "--all_ver")) == [0, 1, 2, 3]


def test_all_ex_runs_every_version_of_every_experiment(tmp_path, capsys):
    make_experiment(tmp_path, "a_exp", 2)
    make_experiment(tmp_path, "b_exp", 3)
    commands = dry_run(capsys, tmp_path, "--all_ex")
    assert [cmd[cmd.index("fit") + 4].split("/config/")[1] for cmd in commands] == [
        "a_exp/version_0/version.yaml", "a_exp/version_1/version.yaml",
        "b_exp/version_0/version.yaml", "b_exp/version_1/version.yaml", "b_exp/version_2/version.yaml"]


@pytest.mark.parametrize("flags,expected", [
    (["-b", "1", "-t", "3"], [1, 2]),  # half-open: 3 is not run
    (["-b", "2"], [2, 3]),  # -t defaults to after the last version
    (["-t", "2"], [0, 1]),  # -b defaults to the first version
])
def test_b_and_t_select_a_half_open_range(tmp_path, capsys, flags, expected):
    make_experiment(tmp_path)
    assert versions_in(dry_run(capsys, tmp_path, "-e", "exp", *flags)) == expected


def test_long_flags_select_what_the_short_ones_do(tmp_path, capsys):
    make_experiment(tmp_path)
    assert versions_in(dry_run(capsys, tmp_path, "--ex_name", "exp", "--v_num", "2")) == [2]
    assert versions_in(dry_run(capsys, tmp_path, "--ex_name", "exp", "--begin_ver", "1", "--end_ver", "3")) == [1, 2]


def test_n_runs_the_listed_versions_in_order(tmp_path, capsys):
    make_experiment(tmp_path)
    assert versions_in(dry_run(capsys, tmp_path, "-e", "exp", "-n", "3", "0", "3")) == [3, 0]


def test_default_config_folder_is_the_projects_from_any_directory_and_no_torch_is_imported(tmp_path):
    experiment = "{{ cookiecutter.experiment_name }}"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import run; "
            f"code = run.main(['-e', {experiment!r}, '-v', '0', '--rerun', '--dry-run']); "
            "assert 'torch' not in sys.modules, 'run.py imported torch'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(PROJECT_ROOT / "sh")], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert str(PROJECT_ROOT / "config" / experiment / "version_0" / "version.yaml") in result.stdout


def test_results_folder_is_named_by_the_version_folder_and_moved_by_the_configs_and_o(tmp_path):
    experiment = make_experiment(tmp_path, n_versions=2)
    version_yaml = experiment / "version_1" / "version.yaml"
    version_yaml.write_text(version_yaml.read_text() + "run:\n  res_dir: elsewhere\n")
    assert Version(experiment, 0).paths.run_dir == tmp_path / "res" / "exp" / "version_0"
    assert Version(experiment, 1).paths.run_dir == PROJECT_ROOT / "elsewhere" / "exp" / "version_1"
    moved = Version(experiment, 0, ("--run.res_dir", str(tmp_path / "o"), "--run.version=v9"))
    assert moved.paths.run_dir == tmp_path / "o" / "exp" / "v9"


def test_old_configs_naming_their_run_as_structure_once_wrote_them_keep_one_folder_each(tmp_path, capsys):
    """version.yaml files that name their run (as structure.py once wrote them), copied without editing:
    the folder names the run, so each version keeps its own results folder."""
    experiment = make_experiment(tmp_path, n_versions=2)
    for k in (0, 1):
        (experiment / f"version_{k}" / "version.yaml").write_text("run:\n  experiment: exp\n  version: version_0\n")
    assert [Version(experiment, k).paths.run_dir.name for k in (0, 1)] == ["version_0", "version_1"]
    assert versions_in(dry_run(capsys, tmp_path, "-e", "exp", "--all_ver")) == [0, 1]


def test_e_with_all_ex_runs_every_version_of_that_experiment_as_all_ver_does(tmp_path, capsys):
    make_experiment(tmp_path, n_versions=3)
    make_experiment(tmp_path, "other", 2)
    all_ex = dry_run(capsys, tmp_path, "-e", "exp", "--all_ex")
    assert versions_in(all_ex) == [0, 1, 2] and all_ex == dry_run(capsys, tmp_path, "-e", "exp", "--all_ver")


@pytest.mark.parametrize("args,message", [
    (["-e", "nope", "-v", "0"], "not found"),
    (["-e", "exp", "-v", "9"], "has no version 9"),
    (["-e", "exp", "-n", "0", "7", "8"], "has no version 7, 8"),
    (["-e", "exp", "-b", "3", "-t", "1"], "empty range"),
    (["-e", "exp", "-b", "5", "-t", "9"], "has no version in [5, 9)"),
    (["-e", "exp", "--all_ex", "-v", "1"], "-e NAME --all_ex runs every version of NAME"),
    (["--all_ex", "-v", "1"], "--all_ex without -e runs every version of every experiment"),
    (["-e", "exp"], "say which versions"),
    (["-e", "exp", "-v", "1", "--all_ver"], "choose versions one way"),
    (["-v", "1"], "say which experiment"),
    (["-e", "exp", "-v", "1", "-o", "--x 'unclosed"], "-o/--other_para"),
    (["-e", "exp", "-v", "1", "--gpus-per-run", "2"], "--gpus-per-run needs --gpus"),
    (["-e", "exp", "-v", "1", "--gpus", "0,1", "--gpus-per-run", "3"], "between 1 and the 2 GPUs"),
    (["-e", "exp", "-v", "1", "--gpus", "0,0"], "distinct GPU ids"),
    (["-e", "exp", "-v", "1", "--gpus", "0,7"], "this machine has no GPU 7 (nvidia-smi lists 0, 1, 2, 3)"),
    (["-e", "exp", "-b", "-1"], "version numbers are never negative, got -b -1"),
    (["-e", "exp", "-v", "1", "--jobs", "0"], "--jobs must be at least 1"),
    (["-e", "exp", "-v", "1", "--resume", "--rerun"], "not allowed with"),
])
def test_bad_selection_is_refused_before_anything_runs(tmp_path, args, message, four_gpus):
    make_experiment(tmp_path)
    with pytest.raises(UsageError, match=re.escape(message)):
        run.main(["-c", str(tmp_path / "config"), *args])
    assert not (tmp_path / "res").exists()


def test_error_is_one_line_and_exit_status_2(tmp_path):
    make_experiment(tmp_path)
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "sh" / "run.py"), "-c", str(tmp_path / "config"),
                             "-e", "exp", "-b", "3", "-t", "1"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("ERROR: empty range") and len(result.stderr.strip().splitlines()) == 1


def test_o_moves_only_the_chosen_version_and_is_checked_against_the_others(tmp_path, capsys):
    make_experiment(tmp_path, n_versions=2)
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", "-o", "--run.version=v9")
    assert command[-1] == "--run.version=v9"
    with pytest.raises(UsageError, match=r"exp/version_1 and exp/version_0 would both write to .*the -o arguments"):
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "-v", "0", "-o", "--run.version=version_1", "--dry-run"])


def test_a_config_file_in_o_is_read_for_where_the_run_writes_and_passed_on_absolute(tmp_path, capsys):
    experiment = make_experiment(tmp_path, n_versions=2)
    preset = PROJECT_ROOT / "config" / "debug" / "fast_dev_run.yaml"
    for given in (["-c", "config/debug/fast_dev_run.yaml"], ["--config=config/debug/fast_dev_run.yaml"]):
        main_args = split_main_args(" ".join(given))
        assert main_args[-1].endswith(str(preset)) and len(main_args) == len(given)
        assert Version(experiment, 0, tuple(main_args)).paths.run_dir == tmp_path / "res" / "exp" / "debug"
    with pytest.raises(UsageError, match="both write to"):  # two debug runs would share the scratch folder
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", "-o", f"-c {preset}", "--dry-run"])
    with pytest.raises(UsageError, match="config file nowhere.yaml not found"):
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "-v", "0", "-o", "-c nowhere.yaml", "--dry-run"])


def test_resume_continues_from_the_newest_checkpoint_a_preempted_run_left(tmp_path, capsys):
    make_experiment(tmp_path, n_versions=1)
    run_dir = write_run(tmp_path, "exp", 0, status="interrupted", checkpoint=True)
    (run_dir / "hpc_ckpt_1.ckpt").write_bytes(b"fake")  # Lightning's SLURM checkpoint, after last.ckpt
    os.utime(run_dir / "checkpoints" / "last.ckpt", (1, 1))
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", "--resume")
    assert command[-2:] == ["--ckpt_path", "hpc"]
    os.utime(run_dir / "hpc_ckpt_1.ckpt", (0, 0))
    [command] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", "--resume")
    assert command[-2:] == ["--ckpt_path", "last"]


def test_gpus_on_a_machine_without_them_are_refused(tmp_path, monkeypatch):
    make_experiment(tmp_path)
    monkeypatch.setattr(_runner, "query_gpus", lambda: None)  # no nvidia-smi
    with pytest.raises(UsageError, match="--gpus needs NVIDIA GPUs, and nvidia-smi finds none"):
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "-v", "0", "--gpus", "0", "--dry-run"])


def test_gpus_outside_the_jobs_cuda_visible_devices_are_refused(tmp_path, capsys, monkeypatch, four_gpus):
    make_experiment(tmp_path, n_versions=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # what a scheduler gave this job
    with pytest.raises(UsageError, match=r"GPU 1 is outside CUDA_VISIBLE_DEVICES=2,3, the GPUs this job .*\(2, 3,"):
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", "--gpus", "1,2", "--dry-run"])
    _, *commands = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--gpus", "2,3")
    assert [cmd[0] for cmd in commands] == ["CUDA_VISIBLE_DEVICES=2", "CUDA_VISIBLE_DEVICES=3"]


def test_dry_run_shows_the_variables_each_run_gets(tmp_path, capsys, four_gpus):
    make_experiment(tmp_path, n_versions=3)
    header, *commands = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--gpus", "0,1,2,3", "--gpus-per-run", "2")
    assert header == "# GPU queue: 2 runs at a time; each gets the next free group of 2"
    assert [cmd[0] for cmd in commands] == ["CUDA_VISIBLE_DEVICES=0,1", "CUDA_VISIBLE_DEVICES=2,3",
                                            "CUDA_VISIBLE_DEVICES=0,1"]
    two_at_once = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--jobs", "2")
    if "OMP_NUM_THREADS" not in os.environ:
        assert all(cmd[0] == f"OMP_NUM_THREADS={_runner.cpu_threads(2)}" for cmd in two_at_once)


def test_a_version_being_trained_again_is_running_whatever_its_old_manifest_says(tmp_path, capsys):
    experiment = make_experiment(tmp_path, n_versions=1)
    paths = write_run(tmp_path, "exp", 0, status="finished")
    held = try_lock(experiment.parent.parent / "res" / "exp" / "version_0" / ".lock")  # a --rerun elsewhere
    try:
        assert run_status(Version(experiment, 0).paths) == "running"
        [line] = dry_run(capsys, tmp_path, "-e", "exp", "-v", "0", "--rerun")
        assert line.startswith("# skipped exp/version_0: running elsewhere")
    finally:
        os.close(held)
    assert paths.is_dir()


def test_finished_versions_are_skipped_and_rerun_replaces_them(tmp_path, capsys):
    make_experiment(tmp_path, n_versions=2)
    write_run(tmp_path, "exp", 0, status="finished")
    skipped, fresh = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver")
    assert skipped.startswith("# skipped exp/version_0: finished") and "--run.overwrite" not in fresh
    rerun = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--rerun")
    assert all(cmd[7:9] == ["--run.overwrite", "true"] for cmd in rerun) and len(rerun) == 2


def test_resume_continues_from_last_checkpoint_or_starts_over_without_one(tmp_path, capsys):
    make_experiment(tmp_path, n_versions=4)
    write_run(tmp_path, "exp", 0, status="running", checkpoint=True)  # killed: lock free
    write_run(tmp_path, "exp", 1, status="failed")  # failed before its first checkpoint
    write_run(tmp_path, "exp", 2, status="finished", checkpoint=True)
    blocked = dry_run(capsys, tmp_path, "-e", "exp", "-n", "0", "1")
    assert blocked[0].startswith("# blocked exp/version_0: killed run") and "--resume" in blocked[0]
    assert blocked[1].startswith("# blocked exp/version_1: failed run")
    killed, failed, finished, new = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--resume")
    assert killed[7:9] == ["--ckpt_path", "last"]
    assert failed[7:9] == ["--run.overwrite", "true"]
    assert finished.startswith("# skipped exp/version_2: finished")
    assert len(new) == 7  # the plain fit command


FAKE_MAIN = """
import os, sys, time
print("start", time.monotonic(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid(), flush=True)
time.sleep(float(sys.argv[2]))
print("end", time.monotonic(), flush=True)
sys.exit(3 if sys.argv[1] == "1" else 0)
"""


@pytest.fixture
def four_gpus(monkeypatch):
    """A machine whose nvidia-smi lists GPUs 0 to 3."""
    monkeypatch.setattr(_runner, "query_gpus", lambda: [GpuStatus(i, f"GPU-{i}", 0.0, 0.0) for i in range(4)])


@pytest.fixture
def fake_main(monkeypatch):
    """Replace main.py by a script that sleeps, prints its GPUs and times, and fails for version 1."""
    def command(version, *extra):
        return [sys.executable, "-c", FAKE_MAIN, str(version.number), "0.6"]

    monkeypatch.setattr(_experiments.Version, "fit_command", command)


def progress(out, event, k):
    """How many progress lines say that ``event`` (queued, started, finished, failed) happened to version k."""
    return len(re.findall(rf"^\[\d+/\d+\] {event} +exp/version_{k}\b", out, flags=re.MULTILINE))


def spans(run_dir):
    """(start, end, CUDA_VISIBLE_DEVICES) that the fake main printed into run.log."""
    lines = (run_dir / "run.log").read_text().splitlines()
    start = next(line.split() for line in lines if line.startswith("start"))
    end = next((line.split() for line in lines if line.startswith("end")), [None, "inf"])
    return float(start[1]), float(end[1]), start[2]


def test_jobs_run_in_parallel_logs_go_to_each_run_and_a_failure_stops_nothing(tmp_path, capsys, fake_main):
    make_experiment(tmp_path, n_versions=4)
    status = run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", "--jobs", "2"])
    out = capsys.readouterr().out
    assert status == 1  # version_1 failed
    for k in range(4):
        assert progress(out, "queued", k) == 1 and progress(out, "started", k) == 1
    assert progress(out, "failed", 1) == 1 and sum(progress(out, "finished", k) for k in (0, 2, 3)) == 3
    table = out[out.index("version  "):]
    assert "exp/version_1  failed" in table and "exp/version_3  finished" in table
    times = [spans(tmp_path / "res" / "exp" / f"version_{k}") for k in range(4)]
    assert times[1][0] < times[0][1] and times[0][0] < times[1][1]  # versions 0 and 1 overlapped
    starts, ends = sorted(t[0] for t in times), sorted(t[1] for t in times)
    assert starts[2] >= ends[0] and starts[3] >= ends[1]  # never more than 2 at once


def test_gpu_queue_gives_each_run_its_own_gpus_and_reuses_freed_ones(tmp_path, capsys, fake_main, four_gpus):
    make_experiment(tmp_path, n_versions=3)
    run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", "--gpus", "0,1,2,3", "--gpus-per-run", "2"])
    first, second, third = (spans(tmp_path / "res" / "exp" / f"version_{k}") for k in range(3))
    assert {first[2], second[2]} == {"0,1", "2,3"}
    assert second[0] < first[1]  # two runs at once: one per pair of GPUs
    assert any(third[2] == run[2] and run[1] <= third[0] for run in (first, second))  # a pair freed before it
    assert "on GPU 0,1" in capsys.readouterr().out


def test_a_version_locked_by_another_runner_is_skipped(tmp_path, capsys, fake_main):
    experiment = make_experiment(tmp_path, n_versions=1)
    paths = Version(experiment, 0).paths
    paths.run_dir.mkdir(parents=True)
    (paths.run_dir / "manifest.json").write_text(json.dumps({"status": "running"}))
    held = try_lock(paths.lock_file)  # another runner (or main.py) training version_0
    try:
        assert run.main(["-c", str(tmp_path / "config"), "-e", "exp", "-v", "0"]) == 0
        assert re.search(r"\] skipped +exp/version_0: running elsewhere", capsys.readouterr().out)
        assert not paths.log_file.exists()
        assert run_status(paths) == "running"
    finally:
        os.close(held)
    assert run_status(paths) == "killed"  # "running" with nobody holding the lock


def test_sigterm_stops_the_runs_prints_the_table_and_leaves_no_process(tmp_path):
    make_experiment(tmp_path, n_versions=2)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import _experiments, run; "
            f"_experiments.Version.fit_command = lambda *args: [sys.executable, '-c', {FAKE_MAIN!r}, '0', '60']; "
            "sys.exit(run.main(['-c', sys.argv[2], '-e', 'exp', '--all_ver']))")
    runner = subprocess.Popen([sys.executable, "-c", code, str(PROJECT_ROOT / "sh"), str(tmp_path / "config")],
                              stdout=subprocess.PIPE, text=True)
    log = tmp_path / "res" / "exp" / "version_0" / "run.log"

    def started():  # the fake main printed its start line (the log's first line is the command)
        return log.is_file() and any(line.startswith("start ") for line in log.read_text().splitlines())

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started():
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signal.SIGTERM
    assert re.search(r"interrupted +exp/version_0 in [\d.]+s: stopped by SIGTERM", out)
    assert re.search(r"interrupted +exp/version_1: not started", out)
    assert re.search(r"^exp/version_1 +interrupted +- +- +-$", out, flags=re.MULTILINE)  # no results of its own
    child = int(next(line for line in log.read_text().splitlines() if line.startswith("start")).split()[3])
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the training process was stopped with run.py, not left behind


SEED_EXAMPLES = [  # sh/run.py as the seed's specification writes it, and the versions each runs
    ("python ./sh/run.py --all_ex", [("ex_name", k) for k in range(19)] + [("resnet", k) for k in range(3)]),
    ("python ./sh/run.py -e ex_name --all_ex", [("ex_name", k) for k in range(19)]),
    ("python ./sh/run.py -e ex_name -v 2", [("ex_name", 2)]),
    ("python ./sh/run.py -e ex_name -n 0 1 3 18 ", [("ex_name", k) for k in (0, 1, 3, 18)]),
    ("python ./sh/run.py -e ex_name -b 0 -t 10", [("ex_name", k) for k in range(10)]),
]


@pytest.mark.parametrize("command,expected", SEED_EXAMPLES, ids=[command for command, _ in SEED_EXAMPLES])
def test_the_seed_s_example_commands_work_as_written(tmp_path, monkeypatch, capsys, command, expected):
    """In a project folder of its own (the seed's relative paths), after the seed's structure.py example."""
    import structure

    (tmp_path / "config").mkdir()
    template = (PROJECT_ROOT / "config" / "template.yaml").read_text()
    (tmp_path / "config" / "template.yaml").write_text(template.replace("  res_dir: res\n", "  res_dir: res_\n", 1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_experiments, "PROJECT_ROOT", tmp_path)
    assert structure.main(shlex.split("-e resnet -v 3 -c ./config -t ./config/template.yaml")) == 0
    assert structure.main(["-e", "ex_name", "-v", "19", "-c", "./config", "-t", "./config/template.yaml"]) == 0
    for name in ("resnet", "ex_name"):
        share = tmp_path / "config" / name / "share.yaml"
        share.write_text(share.read_text().replace("  res_dir: res_\n", f"  res_dir: {tmp_path / 'res'}\n"))
    monkeypatch.setattr(_experiments.Version, "fit_command", lambda version, *extra: [sys.executable, "-c", "pass"])
    assert run.main(shlex.split(command)[2:]) == 0
    ran = re.findall(r"\] finished +(\w+)/version_(\d+)", capsys.readouterr().out)
    assert sorted((name, int(k)) for name, k in ran) == sorted(expected)


def test_slurm_dry_run_prints_the_array_and_leaves_out_what_has_nothing_to_do(tmp_path, capsys):
    make_experiment(tmp_path)
    write_run(tmp_path, "exp", 1, status="finished")
    lines = dry_run(capsys, tmp_path, "-e", "exp", "--all_ver", "--slurm", "--partition", "gpu", "--time", "1:30:00",
                    "--gpus-per-run", "2", "--mem", "32G")
    assert "# not submitted exp/version_1: skipped: finished (--rerun runs it again)" in lines
    assert lines[1].startswith("# job array of 3 task(s)") and "partition gpu, 90 min, 2 GPU(s), 8 CPUs" in lines[1]
    assert versions_in([line for line in lines if not isinstance(line, str)]) == [0, 2, 3]
    assert not (tmp_path / "res" / "slurm").exists()


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30:00", 90), ("2-00:00:00", 2880), ("45:30", 46)])
def test_slurm_time_limits_are_read_in_slurms_formats(text, minutes):
    from _slurm import minutes as read_minutes

    assert read_minutes(text) == minutes


@pytest.mark.parametrize("args, message", [
    (["--partition", "gpu"], "--partition: only with --slurm"),
    (["--slurm", "--time", "soon"], "--time 'soon': give minutes"),
    (["--slurm", "--jobs", "2"], "--gpus and --jobs share out this machine"),
    (["--slurm", "--cpus-per-run", "0"], "--cpus-per-run must be at least 1"),
])
def test_slurm_flags_that_cannot_work_are_refused(tmp_path, args, message):
    make_experiment(tmp_path)
    with pytest.raises(UsageError, match=re.escape(message)):
        run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", *args])


def test_run_py_prints_its_shell_completion():
    printed = subprocess.run([sys.executable, str(PROJECT_ROOT / "sh" / "run.py"), "--print_completion", "bash"],
                             capture_output=True, text=True, check=True).stdout
    assert "complete -o bashdefault -F _shtab_run_py run.py" in printed and "--all_ver" in printed
