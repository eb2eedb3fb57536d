"""Post-generation hook: drop what the answers do not need, then create the first experiment.

Cookiecutter cannot make files conditional, so the template ships every option and this
hook removes the unchosen ones. The first experiment tree is made by the project's own
``sh/structure.py`` (one place for that logic), run with this interpreter and an argument
list (no shell). Standard library only.
"""
import shutil
import subprocess
import sys
from pathlib import Path

DATASET_MODULES = {"mnist.py", "cifar10.py", "digits.py", "imagefolder.py"}
KEEP_DATASET_MODULE = "{{ cookiecutter.__dataset_module }}.py"
HPARAM_SEARCH = "{{ cookiecutter.hparam_search }}"
GITHUB_ACTIONS = {{ cookiecutter.github_actions }}
PRE_COMMIT = {{ cookiecutter.pre_commit }}
EXPERIMENT = {{ cookiecutter.experiment_name | tojson }}
N_VERSIONS = {{ cookiecutter.n_versions | string | tojson }}.strip()
DESCRIPTION = {{ cookiecutter.experiment_description | tojson }}


def unneeded_paths():
    """Paths (relative to the project) that the answers do not use."""
    for module in DATASET_MODULES - {KEEP_DATASET_MODULE}:
        yield Path("data", module)
    if HPARAM_SEARCH == "none":
        yield Path("sh", "hparams.py")
        yield Path("sh", "_search.py")
        yield Path("config", "search")
        yield Path("tests", "test_hparams.py")
    if HPARAM_SEARCH != "optuna":
        yield Path("sh", "optuna_search.py")
        yield Path("config", "search", "optuna.yaml")
        yield Path("runtime", "optuna_trials.py")
        yield Path("tests", "test_optuna_search.py")
    if not GITHUB_ACTIONS:
        yield Path(".github")
    if not PRE_COMMIT:
        yield Path(".pre-commit-config.yaml")


def remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main():
    for path in unneeded_paths():
        remove(path)
    command = [
        sys.executable, str(Path("sh", "structure.py")),
        f"--ex_name={EXPERIMENT}", f"--v_num={N_VERSIONS}", f"--desc={DESCRIPTION}", "--quiet",  # '-5' stays a value
    ]
    result = subprocess.run(command, check=False)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
