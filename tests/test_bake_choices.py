"""Every value of every prompt bakes into a complete, syntactically valid project that passes its own lint."""
import json
import py_compile
import re
import subprocess
import sys

import pytest
import yaml
from conftest import bake, readme_section

CHOICES = json.loads((__import__("conftest").TEMPLATE / "cookiecutter.json").read_text())
IMAGES = ("mnist", "fashion_mnist", "cifar10", "digits", "imagefolder")
# Each task's datasets and networks, the first being what `auto` picks (the pre-generation hook's table).
FAMILIES = {
    "image_classification": (IMAGES, ("resnet", "cnn", "mlp")),
    "autoencoder": (("digits", "mnist", "fashion_mnist", "cifar10", "imagefolder"), ("cnn", "mlp")),
    "tabular": (("breast_cancer", "wine", "diabetes", "csv"), ("mlp",)),
    "text_classification": (("csv", "jsonl"), ("transformer", "bag")),
}
DATA_MODULE = {"mnist": "mnist.py", "fashion_mnist": "mnist.py", "cifar10": "cifar10.py", "digits": "digits.py",
               "imagefolder": "imagefolder.py"}
MODEL_MODULE = {"image_classification": "classifier.py", "autoencoder": "autoencoder.py", "tabular": "tabular.py",
                "text_classification": "text.py"}

# Every task with each dataset and each network that fits it, `auto` for both, then every other prompt's values.
CASES = [{"task": task, "dataset": dataset} for task, (datasets, _) in FAMILIES.items() for dataset in datasets]
CASES += [{"task": task, "model": model} for task, (_, models) in FAMILIES.items() for model in models]
CASES += [{"task": task} for task in FAMILIES]
OTHER_PROMPTS = [key for key, value in CHOICES.items()
                 if isinstance(value, list) and not key.startswith("_") and key not in ("task", "dataset", "model")]
CASES += [{key: value} for key in OTHER_PROMPTS for value in CHOICES[key]]
CASES += [{"github_actions": False}, {"pre_commit": False}, {"devices": "2"}, {"devices": "0,1"}, {"n_versions": "4"}]
CASES = [{**case, **({"devices": "2"} if case.get("strategy") == "ddp" else {})} for case in CASES]
CASE_IDS = [",".join(f"{key}={value}" for key, value in case.items()) for case in CASES]
# Template syntax or a cookiecutter variable left in a baked file (".cookiecutter.json", the answers file, is a name).
UNRENDERED = re.compile(r"\{\{|\{%|(?<![.\w])cookiecutter\.(?!json)")


def family_of(answers) -> tuple[str, str, str]:
    """(task, dataset, model) a bake with ``answers`` has, `auto` resolved."""
    task = answers.get("task", CHOICES["task"][0])
    datasets, models = FAMILIES[task]
    dataset, model = answers.get("dataset", "auto"), answers.get("model", "auto")
    return task, datasets[0] if dataset == "auto" else dataset, models[0] if model == "auto" else model


def text_files(project):
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".txt", ".md", ".toml", ".json", ".cfg"}:
            yield path


def assert_passes_pre_commit_checks(project):
    """What the baked .pre-commit-config.yaml checks on a first commit: ruff with the project's rules,
    no trailing whitespace, one newline at the end of each file (check-yaml: the YAML parse above)."""
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    for path in text_files(project):
        text = path.read_text()
        if not text:
            continue
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path}: not one newline at the end"
        trailing = [n for n, line in enumerate(text.splitlines(), 1) if line != line.rstrip()]
        assert not trailing, f"{path}: trailing whitespace on lines {trailing}"


@pytest.mark.parametrize("answers", CASES, ids=CASE_IDS)
def test_choice_bakes_a_complete_project(cookies, answers):
    project = bake(cookies, **answers)

    for path in text_files(project):
        leftover = UNRENDERED.search(path.read_text())
        assert leftover is None, f"unrendered template text {leftover.group()!r} in {path}"
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), doraise=True)
    for path in list(project.rglob("*.yaml")) + list(project.rglob("*.yml")):
        yaml.safe_load(path.read_text())
    assert_passes_pre_commit_checks(project)

    for folder in ("config", "data", "model", "res", "sh", "tests"):
        assert (project / folder).is_dir(), folder
    assert (project / "main.py").is_file() and (project / "config" / "example.yaml").is_file()
    experiment = project / "config" / "baseline"
    assert (experiment / "share.yaml").read_text() == (project / "config" / "template.yaml").read_text()
    n_versions = int(answers.get("n_versions", CHOICES["n_versions"]))
    assert sorted(p.name for p in experiment.glob("version_*")) == [f"version_{k}" for k in range(n_versions)]

    task, dataset, _ = family_of(answers)
    images = task in ("image_classification", "autoencoder")
    data_module = DATA_MODULE[dataset] if images else f"{task.split('_')[0]}.py"
    kept = {p.name for p in (project / "data").glob("*.py")}
    assert kept == {"__init__.py", "_common.py", data_module, *(["_in_memory.py", "streaming.py"] if images else [])}
    streaming = (project / "sh" / "optimize_data.py", project / "config" / "switches" / "streaming.yaml")
    assert [path.is_file() for path in streaming] == [images, images]
    kept = {p.name for p in (project / "model").glob("*.py")}
    assert kept == {"__init__.py", "_common.py", "_metrics.py", "_utils.py", MODEL_MODULE[task]}


def test_unchosen_extras_are_removed(cookies):
    project = bake(cookies, github_actions=False, pre_commit=False, hparam_search="none")
    assert not (project / ".github").exists()
    assert not (project / ".pre-commit-config.yaml").exists()
    assert not (project / "sh" / "hparams.py").exists()
    assert not (project / "config" / "search").exists() and not (project / "tests" / "test_hparams.py").exists()
    assert not list(project.rglob("*optuna*"))
    grid = bake(cookies, hparam_search="grid")
    assert (grid / "sh" / "hparams.py").is_file() and (grid / "tests" / "test_hparams.py").is_file()
    assert not list(grid.rglob("*optuna*"))  # optuna_search.py, its spec, runtime modules and tests


def test_only_the_chosen_logger_is_a_dependency(cookies):
    requirements = {
        logger: (bake(cookies, logger=logger) / "requirements.txt").read_text()
        for logger in ("tensorboard", "csv", "wandb", "mlflow", "none")
    }
    packages = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
    for logger, text in requirements.items():
        for choice, package in packages.items():
            assert (package in text) == (choice == logger), (logger, package)


def test_a_description_that_looks_like_an_option_is_kept_as_text(cookies):
    project = bake(cookies, experiment_description="-v 5 --quiet")
    assert (project / "config" / "baseline" / "desc.txt").read_text() == "-v 5 --quiet\n"
    assert sorted(p.name for p in (project / "config" / "baseline").glob("version_*")) == ["version_0", "version_1"]


def test_answers_are_recorded_for_regeneration(cookies):
    project = bake(cookies, dataset="digits", model="mlp")
    answers = json.loads((project / ".cookiecutter.json").read_text())
    assert answers["dataset"] == "digits" and answers["model"] == "mlp"
    auto = json.loads((bake(cookies, task="tabular") / ".cookiecutter.json").read_text())
    assert (auto["task"], auto["dataset"], auto["model"]) == ("tabular", "auto", "auto")  # a later bake resolves it


def map_rows(readme: str) -> dict:
    """``{entry: text}`` of the README's "Where things live" table."""
    rows = re.findall(r"^\| `([^`]+)` \| (.*) \|$", readme_section(readme, "Where things live"), flags=re.MULTILINE)
    return dict(rows)


@pytest.mark.parametrize("answers", [{}, {"hparam_search": "optuna"}, {"hparam_search": "none"}],
                         ids=["grid", "optuna", "none"])
def test_the_readme_map_matches_the_project_folder_by_folder(cookies, answers):
    project = bake(cookies, **answers)
    rows = map_rows((project / "README.md").read_text())
    top = {p.name + ("/" if p.is_dir() else "") for p in project.iterdir() if not p.name.startswith(".")}
    folders = {name for name in top if name.endswith("/")}
    assert folders <= set(rows), folders - set(rows)  # every folder has its row
    assert all((project / entry).exists() for entry in rows), [e for e in rows if not (project / e).exists()]
    for folder in ("runtime/", "sh/"):
        named = set(re.findall(r"`([\w.]+\.(?:py|sbatch))`", rows[folder]))
        present = {p.name for p in (project / folder).iterdir() if p.suffix in (".py", ".sbatch")} - {"__init__.py"}
        assert named == present, (folder, named ^ present)
