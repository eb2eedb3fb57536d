"""Each task family learns what it should with config/example.yaml, on real data where some is bundled
(scikit-learn's digits, breast_cancer, diabetes) and on a keyword-defined CSV for text; and transfer learning
chains families: an autoencoder's encoder starts a classifier, ImageNet weights from torch's cache start one.
"""
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import bake, run_python

pytestmark = pytest.mark.slow

EXAMPLE = ["main.py", "fit", "-c", "config/example.yaml", "--trainer.enable_progress_bar=false",
           "--trainer.enable_model_summary=false"]


def trained(project, *args, env=None) -> dict:
    """Train config/example.yaml (with ``args``); its metrics.json."""
    fit = run_python([*EXAMPLE, *args], project, env=env)
    assert fit.returncode == 0, fit.stdout[-2000:] + fit.stderr[-3000:]
    return json.loads((project / "res" / "example" / "version_0" / "metrics.json").read_text())


MEAN_IMAGE_MSE = """
import json
from data import DigitsDataModule
dm = DigitsDataModule(normalize=False)
dm.setup("fit")
train, val = dm.train_set.images.float() / 255, dm.val_set.images.float() / 255
print(json.dumps(float(((val - train.mean(dim=0)) ** 2).mean())))
"""


@pytest.fixture(scope="module")
def autoencoder(cookies_session):
    """An autoencoder project on digits (cnn), trained with its example config."""
    project = bake(cookies_session, project_name="ae", task="autoencoder")
    return project, trained(project)


def test_the_autoencoder_reconstructs_digits_five_times_better_than_the_mean_image(autoencoder):
    project, metrics = autoencoder
    baseline = json.loads(run_python(["-c", MEAN_IMAGE_MSE], project).stdout)
    assert metrics["fit"]["monitor"] == "val/loss" and metrics["fit"]["mode"] == "min"
    assert metrics["fit"]["val"]["val/mse"] * 5 <= baseline, (metrics["fit"]["val"], baseline)
    plots = project / "res" / "example" / "version_0" / "plots"
    assert (plots / "epoch009-reconstructions.png").is_file() and (plots / "epoch009-latent.png").is_file()


def test_tabular_breast_cancer_reaches_95_percent(cookies):
    metrics = trained(bake(cookies, task="tabular"))
    assert metrics["fit"]["monitor"] == "val/acc" and metrics["test"]["test/acc"] >= 0.95, metrics["test"]


def test_tabular_diabetes_regression_explains_over_a_third_of_the_variance(cookies):
    metrics = trained(bake(cookies, task="tabular", dataset="diabetes"))
    assert (metrics["fit"]["monitor"], metrics["fit"]["mode"]) == ("val/mse", "min")
    assert metrics["test"]["test/r2"] >= 0.35, metrics["test"]


def test_text_classification_separates_two_keyword_defined_classes(cookies):
    project = bake(cookies, task="text_classification")
    missing = run_python(EXAMPLE, project)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith(
        f"ERROR: text file {project / 'data' / 'datasets' / 'text' / 'train.csv'} not found: put a CSV with columns")
    sys.path.insert(0, str(project / "tests"))
    try:
        import fakes
    finally:
        sys.path.pop(0)
        sys.modules.pop("fakes", None)
    fakes.write_texts(project / "data" / "datasets" / "text", "csv", n_train=600, n_test=100)
    metrics = trained(project)
    assert metrics["test"]["test/acc"] >= 0.95, metrics["test"]


def test_an_autoencoder_s_encoder_starts_a_classifier_of_another_project(autoencoder, cookies):
    ae_project, ae_metrics = autoencoder
    encoder = ae_metrics["fit"]["best_model_path"]
    classifier = bake(cookies, project_name="clf", dataset="digits", model="cnn")
    metrics = trained(classifier, f"--model.init_args.encoder_checkpoint={encoder}", "--trainer.max_epochs=2",
                      "--lr_scheduler.init_args.T_max=2")
    assert metrics["fit"]["status"] == "finished" and metrics["test"]["test/acc"] > 0.5
    manifest = json.loads((classifier / "res" / "example" / "version_0" / "manifest.json").read_text())
    assert manifest["config"]["model"]["init_args"]["encoder_checkpoint"] == encoder
    refused = run_python([*EXAMPLE, f"--model.init_args.encoder_checkpoint={encoder}", "--model.init_args.backbone=mlp",
                          "--run.version=mismatch"], classifier)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f"ERROR: encoder_checkpoint {encoder}: its encoder is "
                                                               "backbone 'cnn' for input (1, 8, 8), this classifier's "
                                                               "is 'mlp'")


def test_imagenet_weights_put_in_torch_s_cache_start_a_classifier_offline(cookies, tmp_path):
    import torch
    from torchvision import models

    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    weights = models.ResNet18_Weights.IMAGENET1K_V1
    torch.save(models.resnet18().state_dict(), cache / Path(weights.url).name)  # as if downloaded elsewhere
    project = bake(cookies, dataset="digits")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}
    metrics = trained(project, "--model.init_args.backbone=resnet18_pretrained",
                      "--model.init_args.freeze_backbone=true", "--model.init_args.unfreeze_at_epoch=1", "--trainer.max_epochs=2",
                      "--lr_scheduler.init_args.T_max=2", env=env)
    assert metrics["fit"]["status"] == "finished" and metrics["fit"]["epochs"] == 2
    empty = {**os.environ, "TORCH_HOME": str(tmp_path / "empty")}
    refused = run_python([*EXAMPLE, "--model.init_args.backbone=resnet50_pretrained", "--run.version=offline"], project,
                         env=empty)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith(
        "ERROR: backbone resnet50_pretrained needs torchvision's ImageNet weights resnet50-0676ba61.pth: not in "
        f"torch's cache {tmp_path / 'empty' / 'hub' / 'checkpoints'} and the download failed")
