"""Helpers for baking the template with pytest-cookies and checking what comes out."""
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]


def bake(cookies, **answers):
    """Bake with ``answers`` over the defaults; fail the test unless the bake succeeded."""
    result = cookies.bake(extra_context={key: str(value) for key, value in answers.items()})
    assert result.exit_code == 0, f"bake failed: {result.exception!r}"
    return Path(result.project_path)


def run(command, cwd, timeout=600, env=None):
    """Run a command (argument list, no shell) and return the CompletedProcess with text output."""
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def run_python(args, cwd, **kwargs):
    return run([sys.executable, *map(str, args)], cwd, **kwargs)


def readme_section(readme: str, title: str) -> str:
    """The text of a generated README's ``## title`` section, up to the next ``## `` heading."""
    start = readme.index(f"## {title}\n")
    following = readme.find("\n## ", start + 1)
    return readme[start:following if following != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced ``language`` code blocks of ``text``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains models or runs a baked project's own test suite")


def pytest_sessionstart(session):
    """``make test`` runs under ``--dist loadgroup``: each xdist_group must reach one worker, or the module fixtures
    its tests share (trained runs, servers, chunks) are built once per worker, racing on the same folders. A pytest
    and pytest-xdist other than those pinned may not group (pytest 9.2 ignores xdist 3.8's grouped node ids)."""
    if session.config.getoption("dist", "no") != "loadgroup" or hasattr(session.config, "workerinput"):
        return
    pins = dict(line.strip().split("==") for line in (TEMPLATE / "requirements-dev.txt").read_text().splitlines()
                if line.strip().startswith(("pytest==", "pytest-xdist==")))
    found = {name: metadata.version(name) for name in pins}
    if found != pins:
        raise pytest.UsageError(f"--dist loadgroup needs the pinned {pins}, found {found}: make venv")


@pytest.fixture
def template():
    return TEMPLATE
