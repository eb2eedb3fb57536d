"""The research contract (contract.py): each breach is one ERROR line naming what is missing, found as early as
it can be known; what the contract allows (any link names, any prediction columns) works."""
import inspect

import pytest
import torch
from pytorch_lightning import LightningModule

from conftest import MONITOR, PROJECT_ROOT, datamodule_class, model_class
from contract import ConfigError, prediction_columns
from main import main

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")
DATAMODULE, MODEL = datamodule_class(), model_class()
UNLINKED = next(name for name in list(inspect.signature(MODEL.__init__).parameters)[1:] if name not in DATAMODULE.links)


class TakesNothing(LightningModule):
    """A model the datamodule cannot build: it has no argument for what the data links into it."""

    def __init__(self):
        super().__init__()


class ForgetfulData(DATAMODULE):
    """Promises to link one more of the model's arguments into it, but never sets it."""

    links = (*DATAMODULE.links, UNLINKED)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_a_model_without_an_argument_the_data_links_is_refused_before_anything_is_built(tmp_path, fast_args, capsys):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--model=test_contract.TakesNothing"]) == 1
    assert error_line(capsys) == (f"ERROR: {DATAMODULE.__qualname__} links {', '.join(DATAMODULE.links)} into the "
                                  f"model, but TakesNothing.__init__ takes no argument of that name (add it, or drop "
                                  f"it from {DATAMODULE.__qualname__}.links)")
    assert not (tmp_path / "res").exists()


def test_a_link_the_datamodule_never_sets_is_named(tmp_path, fast_args, capsys):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--data.class_path=test_contract.ForgetfulData"]) == 1
    assert error_line(capsys) == f"ERROR: ForgetfulData.links names {UNLINKED}, which its __init__ does not set"


def test_a_monitor_that_validation_never_logs_stops_at_the_first_validation(tmp_path, fast_args, capsys):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--run.monitor=val/accuracy"]) == 1
    line = error_line(capsys)
    assert line.startswith("ERROR: run.monitor val/accuracy was not logged by validation (it logged: ")
    assert MONITOR in line
    assert not list((tmp_path / "res").rglob("*.ckpt"))  # stopped in the sanity check, before any training


def test_a_prediction_that_is_not_tensors_is_named_at_the_first_batch(tmp_path, fast_args, capsys, monkeypatch):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--run.test_after_fit=false"]) == 0
    monkeypatch.setattr(MODEL, "predict_step", lambda self, batch, *args: ["cat"] * len(batch[0]))
    assert main(["predict", "-c", EXAMPLE, *fast_args, "--ckpt_path", "last"]) == 1
    assert error_line(capsys) == ("ERROR: predict_step must return a tensor or a dict of tensors, one row per sample; "
                                  "it returned a list")


def test_prediction_columns_follow_the_outputs():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    assert prediction_columns(torch.tensor([1.5, 2.5]), 2) == {"prediction": [1.5, 2.5]}
    assert prediction_columns({"predicted": scores.argmax(1), "prob": scores}, 2, ["cat", "dog"]) == {
        "predicted": ["dog", "cat"], "prob_cat": pytest.approx([0.1, 0.8]), "prob_dog": pytest.approx([0.9, 0.2])}
    assert list(prediction_columns({"latent": torch.zeros(2, 3)}, 2)) == ["latent_0", "latent_1", "latent_2"]
    with pytest.raises(ConfigError, match=r"output 'latent' has shape \(3, 2\); it must have one row per sample"):
        prediction_columns({"latent": torch.zeros(3, 2)}, 2)
