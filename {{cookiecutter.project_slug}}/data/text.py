"""Labelled text from CSV or JSON-lines files, tokenized with a vocabulary built from the training split.

    data/datasets/text/train.csv    text,label          (or train.jsonl: {"text": "...", "label": "..."} per line)
                                    "a good film",pos
    data/datasets/text/test.csv     the same columns

The columns are named in the config (``text_column``, ``label_column``). The tokenizer is ``word``
(lower-cased words and punctuation) or ``char``, with ``<pad>`` (id 0) and ``<unk>`` (id 1); the
vocabulary is the training split's tokens seen ``min_freq`` times (at most ``max_vocab``) and is saved in
every checkpoint. ``hf:<name>`` uses a pretrained Hugging Face tokenizer instead (with a ``hf:<name>``
backbone). Training batches hold texts of similar length (shuffled buckets), padded to their longest.
"""
import random
import re
from collections import Counter
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from contract import ConfigError, DatasetNotFoundError, project_path

from ._common import ResearchDataModule

PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"\w+|[^\w\s]")
HF_PREFIX = "hf:"


def read_texts(path: Path, text_column: str, label_column: str, labelled: bool = True) -> tuple[list, list]:
    """(texts, labels as strings, or None when unlabelled texts may come) of a .csv or .jsonl file;
    DatasetNotFoundError saying what to put where."""
    import pandas as pd

    if not path.is_file():
        raise DatasetNotFoundError(f"text file {path} not found: put a CSV with columns {text_column},{label_column} "
                                   f"(or a .jsonl file with those keys on each line) there, or point "
                                   "data.init_args.train_file / test_file / predict_file at yours")
    frame = pd.read_json(path, lines=True) if path.suffix.lower() in (".jsonl", ".json") else pd.read_csv(path)
    missing = [c for c in (text_column, label_column)[:1 + labelled] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path} has no column {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))})")
    labels = frame[label_column].astype(str).tolist() if label_column in frame.columns else None
    return frame[text_column].fillna("").astype(str).tolist(), labels


def hf_tokenizer(name: str):
    """A pretrained Hugging Face tokenizer; ConfigError naming the cache when it is not there and cannot be fetched."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ConfigError(f"tokenizer hf:{name} needs the transformers package: pip install transformers") from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as error:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise ConfigError(f"Hugging Face model {name!r} is not in the cache {HF_HUB_CACHE} and could not be "
                          f"downloaded ({str(error).splitlines()[0][:120]}); download it where there is network "
                          "(or set HF_HOME to a copy of that cache)") from None


class Vocabulary:
    """Token <-> id, built from texts; ids 0 and 1 are padding and unknown."""

    def __init__(self, tokens: list, level: str):
        self.tokens, self.level = tokens, level
        self.ids = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def build(cls, texts, level: str, min_freq: int, max_size: int) -> "Vocabulary":
        counts = Counter(token for text in texts for token in cls.split(text, level))
        kept = [token for token, count in counts.most_common(max_size - 2) if count >= min_freq]
        return cls([PAD, UNK, *kept], level)

    @staticmethod
    def split(text: str, level: str) -> list:
        return list(text.lower()) if level == "char" else WORD.findall(text.lower())

    def encode(self, text: str, max_length: int) -> list:
        return [self.ids.get(token, 1) for token in self.split(text, self.level)[:max_length]] or [1]


class EncodedTexts(Dataset):
    """Token ids and a label per text; ``sample_ids`` are the row numbers in the file."""

    def __init__(self, ids: list, labels: list, sample_ids: list):
        self.ids, self.labels, self.sample_ids = ids, labels, sample_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        return self.ids[index], self.labels[index]


def pad_batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(token ids (N, L) padded with 0, mask (N, L) True on real tokens, labels (N,))."""
    longest = max(len(ids) for ids, _ in batch)
    tokens = torch.zeros(len(batch), longest, dtype=torch.long)
    for row, (ids, _) in enumerate(batch):
        tokens[row, :len(ids)] = torch.tensor(ids)
    return tokens, tokens != 0, torch.tensor([label for _, label in batch])


class BucketSampler(Sampler):
    """Indices in an order where each run of ``batch_size`` holds texts of similar length: shuffled, cut into
    pools of 50 batches, each pool sorted by length and cut into batches, the batches shuffled."""

    def __init__(self, lengths: list, batch_size: int, seed: int = 0):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        pool = 50 * self.batch_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return iter([index for batch in batches for index in batch])


class TextDataModule(ResearchDataModule):
    """Text classification data (module docstring)."""

    links = ("vocab_size", "num_classes", "tokenizer")  # contract point 1

    def __init__(self, train_file: str = "data/datasets/text/train.csv", test_file: str = "data/datasets/text/test.csv",
                 text_column: str = "text", label_column: str = "label", tokenizer: str = "word",
                 min_freq: int = 1, max_vocab: int = 20000, max_length: int = 256, batch_size: int = 32,
                 val_fraction: float = 0.1, split_seed: int = 42, predict_file: Optional[str] = None,
                 fold: Optional[int] = None, n_folds: Optional[int] = None):
        """
        Args:
            train_file: labelled texts, .csv or .jsonl (relative to the project folder).
            test_file: labelled texts for test, same columns.
            text_column: the column (or JSON key) of the text.
            label_column: the column (or JSON key) of the label.
            tokenizer: word, char, or hf:<name> (a pretrained Hugging Face tokenizer, for an hf:<name> backbone).
            min_freq: tokens seen fewer times in training are <unk>.
            max_vocab: the vocabulary's size at most (the most frequent tokens).
            max_length: tokens kept per text.
            batch_size: texts per batch.
            val_fraction: share of train_file kept for validation.
            split_seed: seed of that split.
            predict_file: texts (the label column may be absent) for ``main.py predict`` (default: the test file).
            fold: with ``n_folds``, validate on this fold of a fixed k-fold split of the training data.
            n_folds: the number of folds (sh/hparams.py --folds writes both).
        """
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed, fold=fold,
                         n_folds=n_folds)
        self.train_file, self.test_file = project_path(train_file), project_path(test_file)
        self.columns, self.tokenizer, self.max_length = (text_column, label_column), tokenizer, max_length
        self.predict_file = predict_file
        texts, labels = read_texts(self.train_file, *self.columns)
        self.classes = sorted(set(labels))
        train, val = self.train_val_indices(len(texts), [self.classes.index(label) for label in labels])
        self.rows = {"train": train.tolist(), "val": val.tolist()}
        if tokenizer.startswith(HF_PREFIX):
            self.hf = hf_tokenizer(tokenizer[len(HF_PREFIX):])
            self.vocabulary = None
        elif tokenizer in ("word", "char"):
            self.hf = None
            self.vocabulary = Vocabulary.build([texts[i] for i in self.rows["train"]], tokenizer, min_freq, max_vocab)
        else:
            raise ConfigError(f"data.init_args.tokenizer must be word, char or hf:<name>, got {tokenizer!r}")
        self.texts, self.labels = texts, labels

    @property
    def vocab_size(self) -> int:
        return len(self.hf) if self.hf is not None else len(self.vocabulary.tokens)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def state_dict(self) -> dict:
        """The vocabulary and classes, saved with every checkpoint: test and predict encode as training did."""
        return {"tokens": self.vocabulary.tokens if self.vocabulary else None, "classes": self.classes}

    def load_state_dict(self, state: dict) -> None:
        self.classes = state["classes"]
        if state["tokens"] is not None:
            self.vocabulary = Vocabulary(state["tokens"], self.tokenizer)

    def encode(self, text: str) -> list:
        if self.hf is not None:
            return self.hf(text, truncation=True, max_length=self.max_length)["input_ids"]
        return self.vocabulary.encode(text, self.max_length)

    def dataset(self, texts: list, labels: Optional[list], sample_ids: list) -> EncodedTexts:
        index = {name: i for i, name in enumerate(self.classes)}
        unseen = sorted(set(labels or []) - set(index))
        if unseen:
            raise ConfigError(f"labels {', '.join(unseen[:3])} appear outside the training file's classes")
        targets = [index[label] for label in labels] if labels is not None else [-1] * len(texts)
        return EncodedTexts([self.encode(text) for text in texts], targets, sample_ids)

    def split(self, name: str) -> EncodedTexts:
        if name == "test":
            texts, labels = read_texts(self.test_file, *self.columns)
            return self.dataset(texts, labels, list(range(len(texts))))
        rows = self.rows[name]
        return self.dataset([self.texts[i] for i in rows], [self.labels[i] for i in rows], rows)

    def text_loader(self, dataset: EncodedTexts, bucketed: bool = False) -> DataLoader:
        lengths = [len(ids) for ids in dataset.ids]
        sampler = BucketSampler(lengths, self.batch_size, self.split_seed) if bucketed else None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=pad_batch)

    def train_dataloader(self):
        return self.text_loader(self.split("train"), bucketed=True)

    def val_dataloader(self):
        return self.text_loader(self.split("val"))

    def test_dataloader(self):
        return self.text_loader(self.split("test"))

    def predict_dataloader(self):
        """The texts of ``predict_file`` when it is set (labels optional), else the test file."""
        if not self.predict_file:
            return self.test_dataloader()
        texts, labels = read_texts(project_path(self.predict_file), *self.columns, labelled=False)
        return self.text_loader(self.dataset(texts, labels, list(range(len(texts)))))
