"""Plumbing behind main.py: where a run writes, what it records, and checks made before training.

Importing it (main.py and every sh/ script do) loads the project's ``.env`` into the environment, as
python-dotenv reads it, without replacing a variable that is already set: DATA_DIR, WANDB_API_KEY,
MLFLOW_TRACKING_URI and the like stay out of the configs and out of git (.env.example lists them).
"""
import os

from contract import PROJECT_ROOT


def load_env_file(path=PROJECT_ROOT / ".env") -> None:
    """Variables of ``path`` into ``os.environ`` where not set already; nothing when there is no such file."""
    if os.path.isfile(path):
        from dotenv import load_dotenv  # only when there is a file: sh/structure.py runs before any install

        load_dotenv(path, override=False)


load_env_file()
