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
    "task": {{ cookiecutter.task | tojson }},
    "dataset": {{ cookiecutter.__dataset | tojson }},
    "model": {{ cookiecutter.__model | tojson }},
}
IMAGES = ("mnist", "fashion_mnist", "cifar10", "digits", "imagefolder")
# The datasets and networks each task family can use (auto picks the first of each).
FAMILIES = {
    "image_classification": {"dataset": IMAGES, "model": ("resnet", "cnn", "mlp")},
    "autoencoder": {"dataset": IMAGES, "model": ("cnn", "mlp")},
    "tabular": {"dataset": ("breast_cancer", "wine", "diabetes", "csv"), "model": ("mlp",)},
    "text_classification": {"dataset": ("csv", "jsonl"), "model": ("transformer", "bag")},
}

# A Python identifier that is also a valid package name (PEP 508): ASCII, starts with a letter, ends alphanumeric.
PROJECT_SLUG = re.compile(r"^[A-Za-z]([A-Za-z0-9_]*[A-Za-z0-9])?$")
# The same rule as sh/structure.py's EXPERIMENT_NAME (the hook cannot import the template).
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What config/ holds besides experiments: an experiment of one of these names would collide with it.
CONFIG_ENTRIES = ("debug", "search", "example.yaml", "template.yaml")
# 'auto', -1 (all), a positive count, or GPU ids: '0,1' or a single id with a comma, '3,'.
DEVICES = re.compile(r"^(auto|-1|[1-9][0-9]*|[0-9]+(,[0-9]+)+,?|[0-9]+,)$")


def problems(answers):
    """Yield one message per bad answer."""
    family = FAMILIES[answers["task"]]
    for prompt in ("dataset", "model"):
        if answers[prompt] not in family[prompt]:
            yield (f"{prompt} {answers[prompt]!r} does not fit task {answers['task']!r}: choose auto or one of "
                   f"{', '.join(family[prompt])}")
    slug = answers["project_slug"]
    if not PROJECT_SLUG.match(slug) or keyword.iskeyword(slug):
        yield (
            f"project_slug {slug!r} is not a valid package name (ASCII letters, digits and underscores, "
            "starting with a letter, not ending with '_', not a Python keyword)"
        )
    name = answers["experiment_name"]
    if not EXPERIMENT_NAME.match(name) or ".." in name:
        yield (
            f"experiment_name {name!r} is not a safe folder name "
            "(letters, digits, '_', '-', '.'; no '/', spaces or '..'; at most 64 characters)"
        )
    elif name in CONFIG_ENTRIES:
        yield f"experiment_name {name!r} is taken: config/{name} is part of the project; choose another name"
    n_versions = answers["n_versions"].strip()
    if not re.fullmatch(r"[0-9]+", n_versions) or int(n_versions) < 1:
        yield f"n_versions {answers['n_versions']!r} must be a positive integer"
    devices = answers["devices"].strip().replace(" ", "")
    gpu_ids = [part for part in devices.split(",") if part] if "," in devices else []
    if not DEVICES.match(devices):
        yield (
            f"devices {answers['devices']!r} must be 'auto', a positive count, -1 (all), "
            "or GPU ids such as '0,1' (one GPU: '0,')"
        )
    elif len(set(map(int, gpu_ids))) != len(gpu_ids):
        yield f"devices {answers['devices']!r} names a GPU twice: list each GPU id once"
    elif answers["strategy"] == "ddp" and (devices == "1" or len(gpu_ids) == 1):
        yield (
            f"strategy 'ddp' with devices={answers['devices']} runs a single process: "
            "choose more devices, -1, or strategy 'auto'"
        )


def main():
    first = next(problems(ANSWERS), None)
    if first is None:
        return 0
    print(f"ERROR: {first}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
