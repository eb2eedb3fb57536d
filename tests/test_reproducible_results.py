"""Results that reproduce and go into a paper, tried in a digits bake as a new user would: the generated README's
"Reproduce a result" and "Tables and figures for the paper" sections followed as printed; sh/reproduce.py on a
version trained from a clean commit and on one trained with uncommitted model edits, each giving back its own
metrics exactly on the CPU; a planted change of seed that fails with the difference shown; each refusal in one
line with nothing trained; the LaTeX table of a 2-point x 2-seed grid compiled with pdflatex (its structure is
checked in any case), its numbers those of report.py's groups.csv; the figures as one-column vector files."""
import csv
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import bake, code_blocks, readme_section, run_python

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reproduce")]  # one worker: the trained runs are shared

SHORT = "--trainer.max_epochs=2 --trainer.enable_progress_bar=false --trainer.enable_model_summary=false"
GIT_USER = {"GIT_AUTHOR_NAME": "A Researcher", "GIT_AUTHOR_EMAIL": "researcher@example.org",
            "GIT_COMMITTER_NAME": "A Researcher", "GIT_COMMITTER_EMAIL": "researcher@example.org"}
ENV = {**os.environ, **GIT_USER}


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp", hparam_search="grid")


def readme_blocks(project, title, language):
    return code_blocks(readme_section((project / "README.md").read_text(), title), language)


def as_printed(project, line: str, timeout=900):
    """Run one README line in the project with this interpreter as ``python``; run.py trains briefly."""
    command = line.split("  #")[0].strip()
    if command.startswith("python sh/run.py"):
        command += " -o " + shlex.quote(SHORT)
    command = re.sub(r"^python ", shlex.quote(sys.executable) + " ", command)
    return subprocess.run(command, shell=True, cwd=project, env=ENV, capture_output=True, text=True, timeout=timeout)


def reproduce(project, *args):
    return run_python(["sh/reproduce.py", "-e", "baseline", *args], project, env=ENV, timeout=900)


def metrics(project, version):
    return json.loads((project / "res" / "baseline" / version / "metrics.json").read_text())


def manifest_path(project, version):
    return project / "res" / "baseline" / version / "manifest.json"


@pytest.fixture(scope="module")
def reproduced(project):
    """The README's three lines (git init and a first commit, train version_0, reproduce it), then an uncommitted edit
    of the model (and a new untracked module) that version_1 trains with; both reproduced after the edit."""
    lines = readme_blocks(project, "Reproduce a result", "bash")[0].strip().splitlines()
    assert lines[0].startswith("git init") and "sh/run.py -e baseline -v 0" in lines[1]
    assert "sh/reproduce.py -e baseline -v 0" in lines[2]
    done = {}
    for line in lines:
        ran = done[line.split()[1]] = as_printed(project, line)
        assert ran.returncode == 0, line + "\n" + ran.stdout[-3000:] + ran.stderr[-3000:]
    common = project / "model" / "_common.py"
    assert "hidden: int = 512" in common.read_text()
    common.write_text(common.read_text().replace("hidden: int = 512", "hidden: int = 256"))
    (project / "model" / "_notes.py").write_text('"""An untracked module, saved in code.diff too."""\n')
    trained = run_python(["sh/run.py", "-e", "baseline", "-v", "1", "-o", SHORT], project, env=ENV)
    assert trained.returncode == 0, trained.stdout[-3000:]
    return done, reproduce(project, "-v", "1"), reproduce(project, "-v", "0")


def test_a_version_from_a_clean_commit_and_one_with_uncommitted_edits_each_reproduce_exactly(project, reproduced):
    from_readme, edited, clean_again = reproduced
    clean = json.loads(manifest_path(project, "version_0").read_text())["git"]
    dirty = json.loads(manifest_path(project, "version_1").read_text())["git"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    assert (clean["commit"], clean["dirty"], clean["diff"]) == (head, False, None)
    assert (dirty["commit"], dirty["dirty"], dirty["diff"], dirty["untracked"]) == (head, True, "code.diff",
                                                                                  ["model/_notes.py"])
    diff = (project / "res" / "baseline" / "version_1" / "code.diff").read_text()
    assert "+def mlp(input_shape, hidden: int = 256)" in diff and "model/_notes.py" in diff
    assert "torch==" in (project / "res" / "baseline" / "version_1" / "environment.txt").read_text()

    for done in (from_readme["sh/reproduce.py"], edited, clean_again):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "reproduced: all" in done.stdout and "<- differs" not in done.stdout
    assert "+ code.diff (1 untracked files)" in edited.stdout
    # the edit changed the numbers (same configs and seed), so each reproduction ran the code its version ran
    assert metrics(project, "version_0")["test"] != metrics(project, "version_1")["test"]
    for version, run in (("version_0", "run_1"), ("version_0", "run_2"), ("version_1", "run_1")):
        record = json.loads((project / "res" / "baseline" / version / "reproduce" / run / "reproduction.json")
                            .read_text())
        assert record["reproduced"] and all(row["difference"] == 0 for row in record["metrics"]), (version, run)
        assert {"best val/acc", "test/acc", "global_step"} <= {row["metric"] for row in record["metrics"]}
    assert subprocess.run(["git", "worktree", "list"], cwd=project, capture_output=True,
                          text=True).stdout.count("\n") == 1  # the temporary worktrees are gone
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True).stdout
    assert sorted(status.splitlines()) == [" M model/_common.py", "?? model/_notes.py"]  # the tree as it was


def test_a_planted_change_of_seed_exits_1_with_the_difference_shown(project, reproduced):
    config = project / "res" / "baseline" / "version_0" / "config.yaml"
    recorded = config.read_text()
    assert "\nseed_everything: 2022\n" in "\n" + recorded
    config.write_text(("\n" + recorded).replace("\nseed_everything: 2022\n", "\nseed_everything: 7\n")[1:])
    try:
        done = reproduce(project, "-v", "0")
    finally:
        config.write_text(recorded)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "seed 7" in done.stdout and "NOT reproduced" in done.stdout
    shown = [line for line in done.stdout.splitlines() if line.startswith("test/loss ")]
    assert len(shown) == 1 and shown[0].endswith("<- differs"), done.stdout[-3000:]
    recorded_loss = metrics(project, "version_0")["test"]["test/loss"]
    assert f"{recorded_loss:.10g}" in shown[0]


def refused(project, version_args, expected):
    """reproduce.py refuses in one ERROR line, exit status 2, and trains nothing."""
    before = sorted((project / "res" / "baseline").glob("*/reproduce/run_*"))
    done = reproduce(project, *version_args)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and expected in lines[0], done.stderr
    assert sorted((project / "res" / "baseline").glob("*/reproduce/run_*")) == before


@pytest.fixture
def edited_manifest(project):
    """Change version_1's manifest.json for one test; the file is put back afterwards."""
    path = manifest_path(project, "version_1")
    original = path.read_text()

    def edit(**git):
        manifest = json.loads(original)
        manifest["git"].update(git)
        path.write_text(json.dumps(manifest))

    yield edit
    path.write_text(original)


def test_a_version_never_trained_still_running_or_failed_is_refused_in_one_line(project, reproduced):
    assert run_python(["sh/structure.py", "-e", "baseline", "-v", "1"], project).returncode == 0  # version_2
    refused(project, ["-v", "2"], "baseline/version_2 has no manifest.json")
    refused(project, ["-v", "9"], "'baseline' has no version 9")
    run_dir = project / "res" / "baseline" / "version_2"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"status": "failed"}))
    refused(project, ["-v", "2"], "did not finish (status failed)")
    with open(project / "res" / "baseline" / "version_0" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        refused(project, ["-v", "0"], "baseline/version_0 is still running")


def test_code_that_cannot_be_checked_out_again_is_refused_in_one_line(project, reproduced, edited_manifest):
    edited_manifest(commit=None, note="not a git checkout (or git is not installed): the code of this run is not "
                                      "recorded")
    refused(project, ["-v", "1"], "has no recorded code state (not a git checkout")
    edited_manifest(commit="0" * 40)
    refused(project, ["-v", "1"], f"commit {'0' * 12} is no longer in the repository")
    edited_manifest(diff_sha256="0" * 64)
    refused(project, ["-v", "1"], "code.diff is not the diff baseline/version_1 saved")
    subprocess.run(["git", "commit", "-qam", "Narrower MLP"], cwd=project, env=ENV, check=True)
    try:  # the recorded diff against the commit that already holds it
        later = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout
        edited_manifest(commit=later.strip())
        refused(project, ["-v", "1"], "does not apply to commit")
    finally:
        subprocess.run(["git", "reset", "-q", "--soft", "HEAD~1"], cwd=project, env=ENV, check=True)
        subprocess.run(["git", "reset", "-q"], cwd=project, env=ENV, check=True)


# ----------------------------------------------------------------------------- tables and figures for the paper

@pytest.fixture(scope="module")
def paper(project):
    """The README's "Tables and figures for the paper", as printed: a 2-point x 2-seed grid, trained, reported in
    LaTeX against a baseline, and a version analysed."""
    section = readme_section((project / "README.md").read_text(), "Tables and figures for the paper")
    [spec] = code_blocks(section, "yaml")
    (project / spec.splitlines()[0].removeprefix("# ")).write_text(spec)
    for line in code_blocks(section, "bash")[0].strip().splitlines():
        done = as_printed(project, line)
        assert done.returncode == 0, line + "\n" + done.stdout[-3000:] + done.stderr[-3000:]
    [latex] = code_blocks(section, "latex")
    return latex


def groups_csv(project) -> list:
    with open(project / "res" / "lr" / "report" / "groups.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_the_latex_table_of_a_two_point_two_seed_grid_holds_report_py_s_numbers(project, paper):
    table = (project / "res" / "lr" / "report.tex").read_text()
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrr}"):
        assert table.count(rule) == 1, rule
    rows = [line.strip() for line in table.split("\\midrule\n")[1].split("\\bottomrule")[0].splitlines()
            if line.strip()]
    assert len(rows) == 2 and all(row.count(" & ") == 3 and row.endswith("\\\\") for row in rows)
    groups = groups_csv(project)
    assert [(g["optimizer.init_args.lr"], g["finished"]) for g in groups] == [("0.001", "2"), ("0.01", "2")]
    bests = [float(g["best val/acc mean"]) for g in groups]
    tests = [float(g["test mean"]) for g in groups]
    for row, group, label in zip(rows, groups, ("0.001 (baseline)", "0.01")):
        cells = [cell.strip() for cell in row.removesuffix("\\\\").split(" & ")]
        assert cells[0] == label and cells[3] == group["finished"]
        for cell, mean, std, column in ((cells[1], "best val/acc mean", "best val/acc std", bests),
                                        (cells[2], "test mean", "test std", tests)):
            numbers = re.findall(r"\d\.\d{4}", cell)
            assert numbers == [f"{float(group[mean]):.4f}", f"{float(group[std]):.4f}"], (cell, group)
            is_best = round(float(group[mean]), 4) == round(max(column), 4)
            assert cell.startswith("$\\mathbf{") == is_best, cell
    with open(project / "res" / "lr" / "report" / "comparison.csv", newline="") as f:
        [compared] = list(csv.DictReader(f))
    assert compared["test"] == "paired t-test"
    assert ("\\dagger" in rows[1]) == (compared["ci_excludes_0"] == "True")


def test_the_readme_s_latex_compiles_with_the_table_and_a_vector_figure(project, paper):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("no pdflatex: Debian's texlive-latex-recommended is not installed (scripts/install_test_tools.sh, "
                    "run by make test, installs it where apt-get may); the table's structure is checked above")
    preamble, *body = paper.strip().splitlines()
    assert preamble.startswith("\\usepackage{booktabs")
    document = "\\documentclass{article}\n" + preamble + "\n\\begin{document}\n" + "\n".join(body) + "\n\\end{document}\n"
    (project / "paper.tex").write_text(document)
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (project / "paper.pdf").read_bytes().startswith(b"%PDF")


def test_every_figure_of_report_and_analyze_is_a_one_column_pdf_with_embedded_fonts_and_an_svg(project, paper):
    report = project / "res" / "lr" / "report"
    analysis = project / "res" / "lr" / "version_2" / "analysis"
    listed = json.loads((analysis / "analysis.json").read_text())["files"]
    pngs = [*report.glob("*.png"), *analysis.glob("*.png")]
    assert len(pngs) >= 7
    for png in pngs:
        pdf, svg = png.with_suffix(".pdf").read_bytes(), png.with_suffix(".svg").read_text()
        assert pdf.startswith(b"%PDF") and b"/MediaBox [ 0 0 252 " in pdf, png.name  # 3.5 inches wide
        assert b"/FontFile2" in pdf and b"/Type3" not in pdf, png.name  # TrueType fonts, embedded
        assert 'width="252pt"' in svg and "<text" not in svg, png.name  # text drawn as paths
        if png.parent == analysis:
            assert {png.name, png.with_suffix(".pdf").name, png.with_suffix(".svg").name} <= set(listed)
    assert yaml.safe_load((project / "config" / "search" / "lr.yaml").read_text())["seeds"] == [0, 1]
