"""Streaming data with litdata, tried in a digits bake: the generated README's streaming lines as printed
(sh/optimize_data.py, then a version trained on the chunks and its predictions), a dataset several times the cache it streams through
trained to the in-memory path's accuracy, two DDP processes that see each sample once per epoch, a killed fit
resumed mid-epoch from the sample its checkpoint had reached, a bucket on a real S3 endpoint (moto's server), and
the refusals.

Each training batch's samples are logged by a callback the tests add to the project (``sample_log.py``), as
digests of the sample's pixels and label: the same digests as the in-memory DigitsDataModule's samples."""
import csv
import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter

import pytest
from conftest import bake, code_blocks, readme_section, run_python
from services import S3Server, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("streaming")]  # one worker: the chunks are shared

SHORT = "--trainer.max_epochs=10 --trainer.enable_progress_bar=false --trainer.enable_model_summary=false"  # converged
TWO_EPOCHS = ["--trainer.max_epochs=2"]
SWITCH = ["-c", "config/switches/streaming.yaml"]
BATCH = 64
SAMPLE_LOG = '''"""Test helper: each training batch's sample digests (and the cache's size) appended to $SAMPLE_LOG.<rank>;
the process kills itself at step $KILL_AT_STEP."""
import hashlib
import json
import os
import signal
from pathlib import Path

from pytorch_lightning import Callback


def digest(x, y) -> str:
    return hashlib.sha1(x.cpu().contiguous().numpy().tobytes() + str(int(y)).encode()).hexdigest()[:20]


class SampleLog(Callback):
    def __init__(self, cache_dir: str = ""):
        self.cache_dir = cache_dir

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        x, y = batch
        cache = sum(f.stat().st_size for f in Path(self.cache_dir).rglob("*") if f.is_file()) if self.cache_dir else 0
        with open(f"{os.environ['SAMPLE_LOG']}.{trainer.global_rank}", "a") as log:
            log.write(json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step, "cache": cache,
                                  "samples": [digest(xi, yi) for xi, yi in zip(x, y)]}) + "\\n")
        if trainer.global_step == int(os.environ.get("KILL_AT_STEP", "-1")):
            os.kill(os.getpid(), signal.SIGKILL)
'''
IN_MEMORY_DIGESTS = """
import json, sys
from data import DigitsDataModule
from sample_log import digest
dm = DigitsDataModule()
dm.prepare_data(); dm.setup("fit")
print(json.dumps([digest(*dm.train_set[i]) for i in range(len(dm.train_set))]))
"""


@pytest.fixture(scope="module")
def project(cookies_session):
    project = bake(cookies_session, dataset="digits", model="mlp", logger="csv")
    (project / "sample_log.py").write_text(SAMPLE_LOG)
    return project


def readme_lines(project) -> list:
    section = readme_section((project / "README.md").read_text(), "A team's services")
    start = section.index("**Data bigger than memory")
    return [line.split("  #")[0].strip() for line in code_blocks(section[start:], "bash")[0].strip().splitlines()]


def as_printed(project, line: str):
    """A README line run in the project with this interpreter as ``python``; run.py trains briefly."""
    if line.startswith("python sh/run.py"):
        line = line[:-1] + " " + SHORT + '"'
    command = re.sub(r"^python ", shlex.quote(sys.executable) + " ", line)
    return subprocess.run(command, shell=True, cwd=project, capture_output=True, text=True, timeout=900)


def fit(project, version, *args, env=None):
    """main.py fit of the baseline's version_0 settings into res/baseline/<version> (ten epochs unless ``args``
    say otherwise)."""
    return run_python(["main.py", "fit", "-c", "config/baseline/share.yaml", "-c",
                       "config/baseline/version_0/version.yaml", f"--run.version={version}", *SHORT.split(), *args],
                      project, env=env, timeout=900)


def logged(project, version, args=(), kill_at=None, cache_dir="", env=None):
    """``fit`` with the sample log (``env`` added to the environment); the log's records per rank."""
    log = project / "res" / f"samples-{version}"
    env = {**os.environ, **(env or {}), "SAMPLE_LOG": str(log), **({"KILL_AT_STEP": str(kill_at)} if kill_at else {})}
    done = fit(project, version, *SWITCH, "--trainer.callbacks+=sample_log.SampleLog",
               f"--trainer.callbacks.cache_dir={cache_dir}", *args, env=env)
    records = {int(path.suffix[1:]): [json.loads(line) for line in path.read_text().splitlines()]
               for path in log.parent.glob(log.name + ".*")}
    return done, records


def accuracy_of(project, version) -> float:
    return json.loads((project / "res" / "baseline" / version / "metrics.json").read_text())["test"]["test/acc"]


def assert_ok(done):
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def optimized(project):
    """The README's lines: install (here already), optimize, train version_0 on the chunks."""
    lines = readme_lines(project)
    assert lines[0] == "pip install litdata" and lines[1].startswith("python sh/optimize_data.py")
    runs = {line.split()[1]: as_printed(project, line) for line in lines[1:]}
    for line, done in runs.items():
        assert_ok(done)
    return runs


@pytest.fixture(scope="module")
def in_memory(project, optimized):
    """The in-memory path's digests of the training samples, and its test accuracy with the same settings."""
    done = run_python(["-c", IN_MEMORY_DIGESTS], project)
    assert_ok(done)
    assert_ok(fit(project, "in_memory"))
    return json.loads(done.stdout.strip().splitlines()[-1]), accuracy_of(project, "in_memory")


def test_the_readme_writes_the_chunks_and_trains_a_version_from_them(project, optimized, in_memory):
    digests, accuracy = in_memory
    folder = project / "data" / "streaming" / "digits"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["links"] == {"num_classes": 10, "input_shape": [1, 8, 8]}
    assert meta["sizes"] == {"train": len(digests), "val": 144, "test": 359}
    for split, size in meta["sizes"].items():
        index = json.loads((folder / split / "index.json").read_text())
        assert sum(chunk["chunk_size"] for chunk in index["chunks"]) == size
    assert len(list((folder / "train").glob("chunk-*.bin"))) == len(os.sched_getaffinity(0))  # a writer per core
    config = (project / "res" / "baseline" / "version_0" / "config.yaml").read_text()
    assert "class_path: data.StreamingDataModule" in config
    assert accuracy_of(project, "version_0") == pytest.approx(accuracy, abs=0.02) and accuracy > 0.9

    predicted = {}
    for version in ("version_0", "in_memory"):
        done = run_python(["main.py", "predict", "-c", f"res/baseline/{version}/config.yaml", "--ckpt_path", "best",
                           "--trainer.enable_progress_bar=false"], project)
        assert_ok(done)
        with open(project / "res" / "baseline" / version / "predictions.csv", newline="") as f:
            predicted[version] = {row["sample_id"]: row["predicted"] for row in csv.DictReader(f)}
    assert sorted(predicted["version_0"], key=int) == [str(i) for i in range(359)]  # each test sample, by index
    agree = sum(predicted["version_0"][i] == predicted["in_memory"][i] for i in predicted["in_memory"])
    assert agree / 359 > 0.95  # sample i is the in-memory path's sample i


def test_a_dataset_many_times_its_cache_trains_to_the_in_memory_accuracy(project, in_memory, tmp_path):
    digests, accuracy = in_memory
    done = run_python(["sh/optimize_data.py", "-c", "config/example.yaml", "--output", "data/streaming/small",
                       "--chunk-bytes", "16KB"], project)
    assert_ok(done)
    data_bytes = sum(f.stat().st_size for f in (project / "data" / "streaming" / "small" / "train").glob("*.bin"))
    cache = tmp_path / "cache"
    done, records = logged(project, "cached", ["--data.init_args.input_dir=local:data/streaming/small",
                                               f"--data.init_args.cache_dir={cache}",
                                               "--data.init_args.max_cache_size=64KB"], cache_dir=str(cache))
    assert_ok(done)
    peak = max(record["cache"] for record in records[0])
    assert 0 < peak <= data_bytes / 3, (peak, data_bytes)  # never more than a third of the data on local disk
    for epoch in range(10):
        seen = [s for record in records[0] if record["epoch"] == epoch for s in record["samples"]]
        assert Counter(seen) == Counter(digests)  # every sample once per epoch, as in memory
    orders = [[s for record in records[0] if record["epoch"] == epoch for s in record["samples"]] for epoch in (0, 1)]
    assert orders[0] != orders[1]  # shuffled anew each epoch
    assert accuracy_of(project, "cached") == pytest.approx(accuracy, abs=0.02)


def test_two_ddp_processes_each_see_their_own_share_and_together_every_sample_once_per_epoch(project, in_memory):
    digests, _ = in_memory
    done, records = logged(project, "ddp", ["--trainer.strategy=ddp", "--trainer.devices=2",
                                            "--trainer.accelerator=cpu", *TWO_EPOCHS])
    assert_ok(done)
    assert "MEMBER: 2/2" in done.stdout + done.stderr and sorted(records) == [0, 1]
    for epoch in range(2):
        shares = [[s for record in records[rank] if record["epoch"] == epoch for s in record["samples"]]
                  for rank in (0, 1)]
        assert len(shares[0]) == len(shares[1])  # as many batches on each rank: no rank waits for the other
        together = Counter(shares[0]) + Counter(shares[1])
        assert not Counter(shares[0]) & Counter(shares[1])  # no sample on both ranks
        assert together - Counter(digests) == Counter()  # no sample twice, none that is not in the data
        assert len(digests) - sum(together.values()) < 2 * 2 * BATCH  # only the last uneven batches are dropped


def test_a_killed_fit_resumed_from_last_ckpt_goes_on_from_the_sample_it_had_reached(project, in_memory):
    digests, _ = in_memory
    every = ["--trainer.val_check_interval=7", *TWO_EPOCHS]  # validation, and so last.ckpt, at steps 7, 14 ... of each epoch
    killed, first = logged(project, "resumed", every, kill_at=10)
    assert killed.returncode == -9
    checkpoint = project / "res" / "baseline" / "resumed" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    resumed, records = logged(project, "resumed", [*every, "--ckpt_path", "last"])
    assert_ok(resumed)
    before = [record for record in first[0] if record["step"] < 7]
    after = records[0][len(first[0]):]  # the log is appended to
    assert after[0]["step"] == 7 and after[0]["epoch"] == 0
    killed_at = {record["step"]: record["samples"] for record in first[0] if record["step"] >= 7}
    assert {r["step"]: r["samples"] for r in after if r["step"] in killed_at} == killed_at  # the very same batches
    epoch_0 = [s for record in before + [r for r in after if r["epoch"] == 0] for s in record["samples"]]
    assert Counter(epoch_0) == Counter(digests)  # the resumed epoch ends with the samples not seen before the kill
    status = json.loads((project / "res" / "baseline" / "resumed" / "metrics.json").read_text())["fit"]["status"]
    assert status == "finished"


@pytest.fixture(scope="module")
def bucket(project, optimized, tmp_path_factory):
    """The README's bucket, s3://lab-data/digits, on an S3 server holding a copy of data/streaming/digits."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    server.upload(project / "data" / "streaming" / "digits", "lab-data", "digits")
    yield server
    server.stop()


def test_a_version_streams_from_a_bucket_every_sample_once_per_epoch_through_its_cache(project, in_memory, bucket,
                                                                                       tmp_path):
    digests, _ = in_memory
    assert "aws s3 sync data/streaming/digits s3://lab-data/digits" in (project / "README.md").read_text()
    cache = tmp_path / "cache"
    done, records = logged(project, "bucket", ["--data.init_args.input_dir=s3://lab-data/digits",
                                               f"--data.init_args.cache_dir={cache}", *TWO_EPOCHS],
                           cache_dir=str(cache), env=bucket.env)
    assert_ok(done)
    assert max(record["cache"] for record in records[0]) > 0  # the chunks came through the cache
    for epoch in range(2):
        assert Counter(s for r in records[0] if r["epoch"] == epoch for s in r["samples"]) == Counter(digests)
    assert accuracy_of(project, "bucket") > 0.85

    silent = {**bucket.env, "AWS_ENDPOINT_URL": f"https://127.0.0.1:{free_port()}"}  # no server there
    done = fit(project, "no_bucket", *SWITCH, "--data.init_args.input_dir=s3://lab-data/digits",
               env={**os.environ, **silent})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "could not read s3://lab-data/digits/meta.json" in errors[0]
    assert not (project / "res" / "baseline" / "no_bucket" / "checkpoints").exists()


def test_an_existing_dataset_is_kept_without_force_and_missing_chunks_are_one_line(project, optimized):
    folder = project / "data" / "streaming" / "digits"
    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*")}
    done = run_python(["sh/optimize_data.py", "-c", "config/example.yaml"], project)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "ERROR: data/streaming/digits holds a dataset already: pass --force to replace it"]
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*")} == before
    done = fit(project, "nowhere", *SWITCH, "--data.init_args.input_dir=data/streaming/nowhere")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "no optimized dataset in" in errors[0] and "sh/optimize_data.py" in errors[0]
    assert "Traceback" not in done.stderr
