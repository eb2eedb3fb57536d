#!/usr/bin/env python
"""Analyse a trained version on its test split: plots and the numbers behind them, in its run folder.

    python sh/analyze.py -e baseline -v 0            # the best checkpoint; writes res/baseline/version_0/analysis/
    python sh/analyze.py -e baseline -v 0 --ckpt last

Classification: confusion matrix, per-class precision / recall / F1, a reliability diagram with the expected
calibration error, the most confident mistakes (an image grid, or a table), and a 2-D PCA of the penultimate
activations coloured by class (seed 004's figure). Regression: predicted against true values, and a histogram
of the residuals. Autoencoder: the worst reconstructions and the PCA of the latent codes. Each figure is a PNG,
a PDF and an SVG one paper column wide (sh/_figures.py) with a CSV or JSON of its numbers beside it;
analysis.json lists them. The activation PCA needs the model's
``features(...)`` (contract.py): without it, one line says so and the other plots are still written.
"""
import sys

import torch

from _experiments import exit_on_usage_error, shown
from _figures import FORMATS, figure, save
from _trained import TrainedRun, load_run, trained_version_parser
from runtime.run_folder import write_csv_atomic, write_json_atomic

CALIBRATION_BINS = 15
SHOWN_MISTAKES = 16


def parse_args(argv=None):
    return trained_version_parser(__doc__).parse_args(argv)


def outputs(run: TrainedRun) -> dict:
    """The model's outputs, features (None without ``features``), inputs and labels over the test split."""
    collected = {"outputs": [], "features": [], "inputs": [], "labels": []}
    features = getattr(run.model, "features", None)
    with torch.no_grad():
        for inputs, labels in run.test_batches():
            collected["outputs"].append(run.model(*inputs).float())
            collected["features"].append(features(*inputs).float() if features else None)
            collected["inputs"].append(inputs[0] if len(inputs) == 1 else None)
            collected["labels"].append(labels)
    joined = {key: torch.cat(values) if values and values[0] is not None else None
              for key, values in collected.items()}
    joined["has_features"] = features is not None
    return joined


def pca_2d(points: torch.Tensor) -> torch.Tensor:
    """The first two principal components of (N, D) points."""
    centred = points - points.mean(dim=0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:2].T


class Writer:
    """Files of one analysis: figures and tables written atomically into ``folder``, listed in analysis.json."""

    def __init__(self, folder):
        self.folder, self.written, self.numbers = folder, [], {}

    def figure(self, fig, stem: str) -> None:
        save(fig, self.folder, stem)
        self.written += [f"{stem}.{extension}" for extension in FORMATS]

    def table(self, name: str, columns, rows) -> None:
        write_csv_atomic(self.folder / name, columns, rows)
        self.written.append(name)

    def json(self, name: str, data) -> None:
        write_json_atomic(self.folder / name, data)
        self.written.append(name)


def image_grid(images: torch.Tensor, titles: list, title: str):
    columns, rows = min(8, len(images)), (len(images) + 7) // 8
    grid = figure(0.3 + rows * 3.5 / 8 * 1.3)
    for i, (image, caption) in enumerate(zip(images, titles)):
        axis = grid.add_subplot(rows, columns, i + 1)
        picture = image.permute(1, 2, 0).float()
        picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-8)
        axis.imshow(picture.squeeze(-1), cmap="gray")
        axis.set_title(caption, fontsize=4)
        axis.axis("off")
    grid.suptitle(title)
    return grid


def scatter_by_class(points: torch.Tensor, labels: torch.Tensor, names: list, title: str):
    scatter = figure(3.0)
    axis = scatter.subplots()
    for k in sorted(set(labels.tolist())):
        chosen = labels == k
        axis.scatter(points[chosen, 0], points[chosen, 1], s=3, label=names[k] if k < len(names) else str(k))
    axis.legend(markerscale=2, fontsize=5, ncol=1 + len(names) // 12)
    axis.set(title=title, xlabel="PC 1", ylabel="PC 2")
    return scatter


def activation_pca(write: Writer, features, labels, names, what: str) -> None:
    if features is None:
        print(f"note: the model has no features(...), so there is no PCA of its {what} (contract.py, optional)",
              file=sys.stderr)
        return
    points = pca_2d(features)
    write.figure(scatter_by_class(points, labels, names, f"{what}: 2-D PCA"), "features_pca")
    write.table("features_pca.csv", ["pc1", "pc2", "label"],
                [[float(a), float(b), names[int(k)] if int(k) < len(names) else int(k)]
                 for (a, b), k in zip(points.tolist(), labels)])


def classification(write: Writer, run: TrainedRun, got: dict) -> None:
    probabilities, labels = got["outputs"].softmax(dim=-1), got["labels"]
    classes = probabilities.shape[1]
    names = run.class_names or [str(k) for k in range(classes)]
    confidence, predicted = probabilities.max(dim=1)
    confusion = torch.bincount(labels * classes + predicted, minlength=classes * classes).view(classes, classes)
    matrix = figure(3.3)
    axis = matrix.subplots()
    axis.imshow(confusion, cmap="Blues")
    for (i, j), count in zip(torch.cartesian_prod(torch.arange(classes), torch.arange(classes)).tolist(),
                             confusion.flatten().tolist()):
        axis.text(j, i, count, ha="center", va="center", fontsize=max(3, 7 - classes // 5))
    axis.set(xticks=range(classes), yticks=range(classes), xlabel="predicted", ylabel="true", title="confusion matrix")
    axis.set_xticklabels(names, rotation=90, fontsize=6)
    axis.set_yticklabels(names, fontsize=6)
    write.figure(matrix, "confusion_matrix")
    write.table("confusion_matrix.csv", ["true \\ predicted", *names],
                [[names[i], *row] for i, row in enumerate(confusion.tolist())])

    hits = confusion.diag().float()
    precision = hits / confusion.sum(dim=0).clamp(min=1)
    recall = hits / confusion.sum(dim=1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    write.table("per_class.csv", ["class", "precision", "recall", "f1", "support"],
                [[names[k], float(precision[k]), float(recall[k]), float(f1[k]), int(confusion[k].sum())]
                 for k in range(classes)])
    bars = figure(2.4)
    axis = bars.subplots()
    for offset, (label, values) in enumerate((("precision", precision), ("recall", recall), ("F1", f1))):
        axis.bar([k + (offset - 1) * 0.27 for k in range(classes)], values, width=0.27, label=label)
    axis.set(xticks=range(classes), ylim=(0, 1.05), title="per class")
    axis.set_xticklabels(names, rotation=90, fontsize=6)
    axis.legend()
    write.figure(bars, "per_class")

    edges = torch.linspace(0, 1, CALIBRATION_BINS + 1)
    bins, correct = [], predicted == labels
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            bins.append({"low": float(low), "high": float(high), "count": int(inside.sum()),
                         "confidence": float(confidence[inside].mean()),
                         "accuracy": float(correct[inside].float().mean())})
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / len(labels)
    write.json("calibration.json", {"expected_calibration_error": ece, "bins": bins})
    reliability = figure(3.0)
    axis = reliability.subplots()
    axis.plot([0, 1], [0, 1], color="gray", linestyle="--", label="calibrated")
    axis.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=1 / CALIBRATION_BINS, align="edge",
             alpha=0.7, label="accuracy")
    axis.set(xlabel="confidence", ylabel="accuracy", title=f"reliability (ECE {ece:.3f})", xlim=(0, 1), ylim=(0, 1))
    axis.legend()
    write.figure(reliability, "reliability")

    wrong = (~correct).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)][:SHOWN_MISTAKES]
    ids = getattr(run.datamodule.test_dataloader().dataset, "sample_ids", None)
    write.table("mistakes.csv", ["sample_id", "true", "predicted", "confidence"],
                [[ids[i] if ids else i, names[int(labels[i])], names[int(predicted[i])], float(confidence[i])]
                 for i in worst.tolist()])
    if got["inputs"] is not None and got["inputs"].ndim == 4 and len(worst):
        write.figure(image_grid(got["inputs"][worst], [f"{names[int(labels[i])]} as {names[int(predicted[i])]}"
                                                       for i in worst.tolist()], "most confident mistakes"),
                     "mistakes")
    activation_pca(write, got["features"], labels, names, "penultimate activations")
    write.numbers.update(accuracy=float(correct.float().mean()), expected_calibration_error=ece)


def regression(write: Writer, got: dict) -> None:
    predicted, true = got["outputs"], got["labels"].float()
    residuals = predicted - true
    write.table("predicted_vs_true.csv", ["true", "predicted", "residual"],
                [[float(a), float(b), float(c)] for a, b, c in zip(true, predicted, residuals)])
    scatter = figure(3.0)
    axis = scatter.subplots()
    axis.scatter(true, predicted, s=4, alpha=0.7)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    axis.plot([low, high], [low, high], color="gray", linestyle="--")
    axis.set(xlabel="true", ylabel="predicted", title="predicted against true")
    write.figure(scatter, "predicted_vs_true")
    histogram = figure(2.4)
    axis = histogram.subplots()
    axis.hist(residuals, bins=30)
    axis.set(xlabel="predicted - true", ylabel="samples", title="residuals")
    write.figure(histogram, "residuals")
    write.numbers.update(mse=float(residuals.pow(2).mean()), mae=float(residuals.abs().mean()),
                         r2=float(1 - residuals.pow(2).sum() / (true - true.mean()).pow(2).sum()))


def autoencoder(write: Writer, run: TrainedRun, got: dict) -> None:
    inputs, rebuilt = got["inputs"], got["outputs"]
    errors = (rebuilt - inputs).pow(2).flatten(1).mean(dim=1)
    worst = errors.argsort(descending=True)[:8]
    write.table("reconstruction_errors.csv", ["index", "reconstruction_error"],
                [[i, float(e)] for i, e in enumerate(errors)])
    pairs = torch.stack([inputs[worst], rebuilt[worst]], dim=1).flatten(0, 1)
    write.figure(image_grid(pairs, [t for i in worst.tolist() for t in (f"#{i}", f"{float(errors[i]):.4f}")],
                            "worst reconstructions (input, reconstruction)"), "worst_reconstructions")
    names = run.class_names or [str(k) for k in range(int(got["labels"].max()) + 1)]
    activation_pca(write, got["features"], got["labels"], names, "latent codes")
    write.numbers.update(mse=float(errors.mean()))


def main(argv=None) -> int:
    args = parse_args(argv)
    run = load_run(args.config, args.ex_name, args.v_num, args.ckpt)
    got = outputs(run)
    write = Writer(run.paths.run_dir / "analysis")
    write.folder.mkdir(parents=True, exist_ok=True)
    if got["inputs"] is not None and got["outputs"].shape == got["inputs"].shape:
        kind = "autoencoder"
        autoencoder(write, run, got)
    elif got["outputs"].ndim == 1:
        kind = "regression"
        regression(write, got)
    else:
        kind = "classification"
        classification(write, run, got)
    write.json("analysis.json", {"kind": kind, "checkpoint": str(run.checkpoint), "samples": len(got["labels"]),
                                 **write.numbers, "files": sorted(write.written)})
    print(f"{kind} analysis of {shown(run.checkpoint)} on {len(got['labels'])} test samples: "
          + ", ".join(f"{key} {value:.4f}" for key, value in write.numbers.items()))
    print("written: " + ", ".join(shown(write.folder / name) for name in sorted(write.written)))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
