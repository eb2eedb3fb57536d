"""The two baselines of the benchmark, run inside a generated project (cwd) with its config/example.yaml.

    python baselines.py raw   --out R.json [--data-dir D] [--epochs E] [--train-batches B] [--val-batches V]
    python baselines.py floor --out F.json ...

``raw``: the loop a careful engineer writes by hand without Lightning: the same network (the project's
model/_common.py), optimizer, scheduler, seed, split and batch size as the config; the data decoded once
and normalised once up front (with the project's own arithmetic, so the inputs are bit-identical), a
DataLoader cutting whole shuffled batches by index (no per-sample collate, no workers), loss and
accuracy accumulated on the device without per-step syncs, and per epoch a validation pass and a
checkpoint of model and optimizer. Seeded as Lightning seeds (its sanity check restores the RNG
afterwards), the shuffled batches are the very batches Lightning trains on.

``floor``: forward + backward + optimizer step on batches sliced in advance from preloaded tensors:
no loader, no metrics, no validation: what the same eager PyTorch training costs with nothing around it.

Both run on ``--device`` (default: the GPU when there is one, as main.py's ``accelerator: auto``), with the
data held there, as a careful engineer would on a GPU; step times are taken after a CUDA synchronisation.
Both write per-epoch timings as JSON, in the format of probe.py; ``raw`` also the time of each step's
zero_grad, forward, loss, backward, update and loss/accuracy accumulation (``computes``: what (1)'s
``optimizer_step`` times, the rest of the step being the loop and the loading of the batch).
"""
import argparse
import importlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

sys.path.insert(0, str(Path.cwd()))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe import label_checksum  # noqa: E402


def build(class_path: str, *args, **kwargs):
    module, name = class_path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def load_data(config: dict, data_dir):
    """Normalised float train / validation tensors, prepared once outside any timing: the project's decoded
    images, split and normalisation (the same floating-point operations, so both runs see identical inputs)."""
    from data._common import split_indices
    from data._in_memory import TensorImageDataset

    data_args = dict(config["data"].get("init_args") or {})
    if data_dir:
        data_args["data_dir"] = data_dir
    datamodule = build(config["data"]["class_path"], **data_args)
    datamodule.prepare_data()
    images, labels = datamodule.load_split(train=True)
    train_idx, val_idx = split_indices(len(labels), datamodule.val_fraction, datamodule.split_seed)
    x, y = TensorImageDataset(images, labels, datamodule.mean, datamodule.std).__getitems__(range(len(labels)))
    return datamodule, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def batches(dataset: TensorDataset, batch_size: int, shuffle: bool) -> DataLoader:
    """Whole batches by tensor indexing: the sampler yields index lists, TensorDataset slices them at once."""
    sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it times the work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def validate(net, loader, limit, device) -> float:
    net.eval()
    correct, total = torch.zeros((), dtype=torch.long, device=device), 0
    with torch.inference_mode():
        for i, (x, y) in enumerate(loader):
            if i == limit:
                break
            correct += (net(x).argmax(dim=1) == y).sum()
            total += len(y)
    net.train()
    return float(correct) / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["raw", "floor"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="config/example.yaml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-batches", type=int, default=None, help="batches per epoch (default: all)")
    parser.add_argument("--val-batches", type=int, default=None, help="validation batches per epoch (default: all)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the network and the data live (default: cuda when available)")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = yaml.safe_load(Path(args.config).read_text())
    seed = int(config["seed_everything"])
    datamodule, (x_train, y_train), (x_val, y_val) = load_data(config, args.data_dir)
    x_train, y_train, x_val, y_val = (tensor.to(device) for tensor in (x_train, y_train, x_val, y_val))
    train_limit = args.train_batches or -1
    val_limit = args.val_batches or -1

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    from model._common import build_backbone

    model_args = config["model"]["init_args"]
    features, width = build_backbone(model_args["backbone"], datamodule.input_shape)  # as ImageClassifier builds it
    net = torch.nn.Sequential(features, torch.nn.Sequential(torch.nn.Dropout(model_args["dropout"]),
                                                            torch.nn.Linear(width, datamodule.num_classes)))
    net.to(device)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=model_args["label_smoothing"])
    optimizer = build(config["optimizer"]["class_path"], net.parameters(), **config["optimizer"]["init_args"])
    scheduler = build(config["lr_scheduler"]["class_path"], optimizer, **config["lr_scheduler"]["init_args"])
    batch_size = datamodule.batch_size
    net.train()

    epochs = []
    if args.mode == "raw":
        train_loader = batches(TensorDataset(x_train, y_train), batch_size, shuffle=True)
        val_loader = batches(TensorDataset(x_val, y_val), batch_size, shuffle=False)
        checkpoint = Path(tempfile.mkdtemp()) / "last.pt"
        for _ in range(args.epochs):
            start = time.perf_counter()
            loss_sum, correct = torch.zeros((), device=device), torch.zeros((), dtype=torch.long, device=device)
            samples, step_ends, computes = 0, [], []
            for i, (x, y) in enumerate(train_loader):
                if i == train_limit:
                    break
                if i == 0:
                    first = label_checksum(y)
                synchronize(device)  # the batch's loading is not the step's
                compute_start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                logits = net(x)
                loss = criterion(logits, y)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(y)
                correct += (logits.detach().argmax(dim=1) == y).sum()
                synchronize(device)
                computes.append(time.perf_counter() - compute_start)
                samples += len(y)
                step_ends.append(time.perf_counter() - start)
            train_s = time.perf_counter() - start
            val_acc = validate(net, val_loader, val_limit, device)
            scheduler.step()
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint)
            print(f"epoch {len(epochs)}: train loss {float(loss_sum) / samples:.4f} "
                  f"acc {float(correct) / samples:.4f}, val acc {val_acc:.4f}", flush=True)
            epochs.append({"train_s": train_s, "epoch_s": time.perf_counter() - start, "samples": samples,
                           "val_acc": val_acc, "first_batch": first, "step_ends": step_ends, "computes": computes})
    else:
        for _ in range(args.epochs):
            order = torch.randperm(len(y_train)).split(batch_size)[:train_limit if train_limit > 0 else None]
            prepared = [(x_train[index.to(device)], y_train[index.to(device)]) for index in order]
            step_ends = []
            synchronize(device)
            start = time.perf_counter()
            for x, y in prepared:
                optimizer.zero_grad(set_to_none=True)
                criterion(net(x), y).backward()
                optimizer.step()
                synchronize(device)
                step_ends.append(time.perf_counter() - start)
            train_s = time.perf_counter() - start
            scheduler.step()
            epochs.append({"train_s": train_s, "epoch_s": train_s, "samples": sum(len(y) for _, y in prepared),
                           "step_ends": step_ends})
    Path(args.out).write_text(json.dumps({"epochs": epochs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
