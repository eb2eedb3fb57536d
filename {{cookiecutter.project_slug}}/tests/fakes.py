"""Tiny fake datasets written in the real on-disk formats, read back through the real loading code.

    IDX files (MNIST / Fashion-MNIST), CIFAR-10 python pickle batches, ImageFolder PNG trees.

Images are class-dependent patterns plus noise, so a model can learn them in a few steps.
"""
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_DTYPE_UBYTE = 0x08


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in IDX format (magic: 0, 0, dtype 0x08, number of dimensions)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, IDX_DTYPE_UBYTE, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def patterned_images(n: int, shape, num_classes: int = 10, seed: int = 0):
    """``n`` uint8 images of ``shape`` (C, H, W) whose brightness pattern encodes their label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    c, h, w = shape
    base = np.zeros((num_classes, c, h, w), dtype=np.float32)
    for k in range(num_classes):
        rows = slice((k * h) // num_classes, ((k + 1) * h) // num_classes + 1)
        base[k, :, rows, :] = 200.0
    noise = rng.normal(0.0, 25.0, size=(n, c, h, w))
    images = np.clip(base[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.uint8)


def write_mnist(root: Path, name: str = "MNIST", n_train: int = 200, n_test: int = 50) -> Path:
    """Write ``<root>/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; return the raw folder."""
    raw = Path(root) / name / "raw"
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = patterned_images(n, (1, 28, 28), seed=seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, n_per_batch: int = 40, n_test: int = 50) -> Path:
    """Write ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` pickles; return that folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": n_per_batch, "label_names": CIFAR10_CLASSES, "num_vis": 3072}, f)
    names = [(f"data_batch_{i}", n_per_batch, i) for i in range(1, 6)] + [("test_batch", n_test, 0)]
    for name, n, seed in names:
        images, labels = patterned_images(n, (3, 32, 32), seed=seed)
        entry = {"data": images.reshape(n, -1), "labels": labels.astype(int).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return folder


def write_imagefolder(root: Path, splits=("train", "test"), classes=("cat", "dog", "fish"),
                      per_class: int = 12) -> Path:
    """Write ``<root>/<split>/<class>/<i>.png`` RGB images; return ``root``."""
    from PIL import Image

    root = Path(root)
    for s, split in enumerate(splits):
        images, labels = patterned_images(per_class * len(classes), (3, 24, 24), num_classes=len(classes), seed=s)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    return root


def write_table(path: Path, rows: int = 120, seed: int = 0) -> Path:
    """A CSV table: two numeric features, one categorical (``colour``) and a ``label`` that depends on them."""
    rng = np.random.default_rng(seed)
    size, weight = rng.normal(0, 1, rows), rng.normal(5, 2, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    label = np.where(size + (colour == "red") * 1.5 > 0.5, "big", "small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["size,weight,colour,label"]
    lines += [f"{a:.4f},{b:.4f},{c},{d}" for a, b, c, d in zip(size, weight, colour, label)]
    path.write_text("\n".join(lines) + "\n")
    return path


KEYWORDS = {"pos": ["excellent", "wonderful", "great"], "neg": ["awful", "terrible", "boring"]}
FILLER = "the a film plot story actor scene it was and but with very some".split()


def keyword_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs whose label is told by one keyword among filler words."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, int(rng.integers(3, 15))))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(KEYWORDS[label])))
        pairs.append((" ".join(words), label))
    return pairs


def write_texts(folder: Path, suffix: str = "csv", n_train: int = 200, n_test: int = 60) -> Path:
    """``<folder>/train.<suffix>`` and ``test.<suffix>`` (csv: columns text,label; jsonl: those keys); return folder."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        pairs = keyword_texts(n, seed)
        if suffix == "jsonl":
            text = "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in pairs)
        else:
            text = "text,label\n" + "".join(f'"{t}",{label}\n' for t, label in pairs)
        (folder / f"{name}.{suffix}").write_text(text)
    return folder
