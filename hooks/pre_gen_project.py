"""Pre-generation hook: reject answers that cannot produce a working project.

Every failure prints one line starting with ``ERROR:`` and exits 1, so cookiecutter
stops before writing anything. Standard library only. The answers are read from
Python literals rendered by cookiecutter, never passed through a shell.
"""
import keyword
import re
import sys

ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "experiment_name": {{ cookiecutter.experiment_name | tojson }},
    "n_versions": {{ cookiecutter.n_versions | string | tojson }},
    "devices": {{ cookiecutter.devices | string | tojson }},
    "strategy": {{ cookiecutter.strategy | tojson }},
    "precision": {{ cookiecutter.precision | tojson }},
}

# The same rule as sh/structure.py's EXPERIMENT_NAME (the hook cannot import the template).
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICES = re.compile(r"^(auto|-1|[1-9][0-9]*|[0-9]+(,[0-9]+)*,?)$")


def problems(answers):
    """Yield one message per bad answer."""
    slug = answers["project_slug"]
    if not slug.isidentifier() or keyword.iskeyword(slug):
        yield (
            f"project_slug {slug!r} is not a valid Python identifier "
            "(use letters, digits and underscores, not starting with a digit)"
        )
    name = answers["experiment_name"]
    if not EXPERIMENT_NAME.match(name) or ".." in name:
        yield (
            f"experiment_name {name!r} is not a safe folder name "
            "(letters, digits, '_', '-', '.'; no '/', spaces or '..'; at most 64 characters)"
        )
    n_versions = answers["n_versions"].strip()
    if not n_versions.isdigit() or int(n_versions) < 1:
        yield f"n_versions {answers['n_versions']!r} must be a positive integer"
    devices = answers["devices"].strip().replace(" ", "")
    if not DEVICES.match(devices):
        yield (
            f"devices {answers['devices']!r} must be 'auto', a positive count, -1 (all), "
            "or a comma-separated list of GPU ids such as '0,1'"
        )
    elif answers["strategy"] == "ddp" and devices == "1":
        yield "strategy 'ddp' with devices=1 runs a single process: choose devices > 1, -1, or strategy 'auto'"


def main():
    first = next(problems(ANSWERS), None)
    if first is None:
        return 0
    print(f"ERROR: {first}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
