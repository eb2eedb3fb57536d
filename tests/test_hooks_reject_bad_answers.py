"""The pre-generation hook stops bad answers with one ERROR: line and leaves nothing behind."""
import pytest
from cookiecutter.exceptions import FailedHookException

BAD_ANSWERS = [
    ({"project_name": "123 project"}, "project_slug"),
    ({"project_slug": "my-project"}, "project_slug"),
    ({"project_slug": "class"}, "project_slug"),
    ({"experiment_name": "a/b"}, "experiment_name"),
    ({"experiment_name": ".."}, "experiment_name"),
    ({"experiment_name": "has space"}, "experiment_name"),
    ({"experiment_name": "/abs/path"}, "experiment_name"),
    ({"n_versions": "0"}, "n_versions"),
    ({"n_versions": "-1"}, "n_versions"),
    ({"n_versions": "abc"}, "n_versions"),
    ({"devices": "many"}, "devices"),
    ({"strategy": "ddp", "devices": "1"}, "strategy 'ddp'"),
]


@pytest.mark.parametrize("answers,mentions", BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_bad_answer_fails_the_hook_with_one_error_line(cookies, capfd, answers, mentions):
    result = cookies.bake(extra_context=answers)
    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException)
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and mentions in errors[0], errors
    assert result.project_path is None or not result.project_path.exists()
