"""Classification metrics (torchmetrics), one collection per stage so their states never mix."""
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy and macro F1, logged as ``<prefix>acc`` and ``<prefix>f1``.

    ``validate_args=False``: the argument checks would cost host-device syncs on every GPU step; the
    logits come from the network and the cross-entropy loss already rejects labels out of range.
    """
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False),
            "f1": MulticlassF1Score(num_classes=num_classes, average="macro", validate_args=False),
        },
        prefix=prefix,
    )
