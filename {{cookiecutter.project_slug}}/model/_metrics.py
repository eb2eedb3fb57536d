"""Metrics (torchmetrics), one collection per stage so their states never mix."""
from torchmetrics import MetricCollection
{%- if cookiecutter.task == 'tabular' %}
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score
{%- else %}
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
{%- endif %}


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy and macro F1{% if cookiecutter.task == 'tabular' %} and AUROC{% endif %}, logged as ``<prefix>acc`` and ``<prefix>f1``{% if cookiecutter.task == 'tabular' %} (``<prefix>auroc``){% endif %}.

    ``validate_args=False``: the argument checks would cost host-device syncs on every GPU step; the
    logits come from the network and the cross-entropy loss already rejects labels out of range.
    """
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False),
            "f1": MulticlassF1Score(num_classes=num_classes, average="macro", validate_args=False),
{%- if cookiecutter.task == 'tabular' %}
            "auroc": MulticlassAUROC(num_classes=num_classes, validate_args=False),
{%- endif %}
        },
        prefix=prefix,
    )
{%- if cookiecutter.task == 'tabular' %}


def regression_metrics(prefix: str) -> MetricCollection:
    """Mean squared and absolute error and R², logged as ``<prefix>mse``, ``<prefix>mae``, ``<prefix>r2``."""
    return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}, prefix=prefix)
{%- endif %}
