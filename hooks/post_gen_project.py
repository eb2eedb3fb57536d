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

TASK = "{{ cookiecutter.task }}"
DATASET_MODULES = {"mnist.py", "cifar10.py", "digits.py", "imagefolder.py", "tabular.py", "text.py"}
KEEP_DATASET_MODULE = "{{ cookiecutter.__dataset_module }}.py"
MODEL_MODULES = {"classifier.py", "autoencoder.py", "tabular.py", "text.py"}
KEEP_MODEL_MODULE = "{{ cookiecutter.__model_module }}.py"
# The tests of one task family; the others' are removed with their code.
FAMILY_TESTS = {
    "image_classification": ("test_data.py", "test_model.py", "test_performance.py", "test_predict.py",
                             "test_streaming.py"),
    "autoencoder": ("test_data.py", "test_autoencoder.py", "test_streaming.py"),
    "tabular": ("test_tabular.py",),
    "text_classification": ("test_text.py",),
}
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
    for module in MODEL_MODULES - {KEEP_MODEL_MODULE}:
        yield Path("model", module)
    if TASK not in ("image_classification", "autoencoder"):
        yield Path("data", "_in_memory.py")
        yield Path("data", "streaming.py")
        yield Path("sh", "optimize_data.py")
        yield Path("config", "switches", "streaming.yaml")
    for test in {name for names in FAMILY_TESTS.values() for name in names} - set(FAMILY_TESTS[TASK]):
        yield Path("tests", test)
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
