"""Text: CSV and JSON-lines files read, a vocabulary built from the training split (saved in every checkpoint),
batches of similar lengths with padding masks that change nothing, and the three kinds of encoder."""
import csv
import importlib.util

import pytest
import torch

from conftest import PROJECT_ROOT
from contract import ConfigError, DatasetNotFoundError
from data import TextDataModule
from data.text import BucketSampler, pad_batch
from fakes import KEYWORDS, write_texts
from main import main
from model import TextClassifier

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")
needs_transformers = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                        reason="hf: backbones need the transformers package")


def datamodule(folder, suffix="csv", **kwargs) -> TextDataModule:
    return TextDataModule(train_file=str(folder / f"train.{suffix}"), test_file=str(folder / f"test.{suffix}"),
                          **kwargs)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_both_file_formats_read_the_same_texts(tmp_path, suffix):
    dm = datamodule(write_texts(tmp_path, suffix), suffix)
    assert dm.classes == ["neg", "pos"] and len(dm.texts) == 200
    assert dm.split("test").labels[:2] == [0, 1]  # the test file's first rows: neg, then pos


def test_the_vocabulary_comes_from_the_training_split(tmp_path):
    dm = datamodule(write_texts(tmp_path))
    assert dm.vocabulary.tokens[:2] == ["<pad>", "<unk>"] and dm.vocab_size == len(dm.vocabulary.tokens)
    training_words = {word for i in dm.rows["train"] for word in dm.texts[i].split()}
    assert set(dm.vocabulary.tokens[2:]) <= training_words
    assert dm.encode("excellent zyzzyva") == [dm.vocabulary.ids["excellent"], 1]  # an unseen word is <unk>
    chars = datamodule(tmp_path, tokenizer="char")
    assert chars.vocab_size > 10 and chars.encode("ab") == [chars.vocabulary.ids[c] for c in "ab"]


def test_missing_files_and_columns_are_one_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train.csv not found: put a CSV with columns text,label"):
        datamodule(tmp_path / "nowhere")
    write_texts(tmp_path)
    with pytest.raises(ConfigError, match="has no column review"):
        datamodule(tmp_path, text_column="review")
    with pytest.raises(ConfigError, match="tokenizer must be word, char or hf:<name>"):
        datamodule(tmp_path, tokenizer="bpe")


def test_batches_hold_texts_of_similar_length_and_every_text_once(tmp_path):
    lengths = [int(n) for n in torch.randint(1, 200, (640,))]
    order = list(BucketSampler(lengths, batch_size=32, seed=1))
    assert sorted(order) == list(range(640))
    spread = [max(lengths[i] for i in order[k:k + 32]) - min(lengths[i] for i in order[k:k + 32])
              for k in range(0, 640, 32)]
    assert sum(spread) / len(spread) < 40  # shuffled at random it would be about 180
    assert list(BucketSampler(lengths, 32, seed=1)) == order and order != list(BucketSampler(lengths, 32, seed=2))


@pytest.mark.parametrize("backbone", ["transformer", "bag"])
def test_padding_changes_no_prediction(backbone):
    model = TextClassifier(vocab_size=50, num_classes=2, backbone=backbone, embed_dim=16, layers=1).eval()
    short, long = [5, 6, 7], [5, 6, 7, 8, 9, 10, 11, 12]
    tokens, mask, _ = pad_batch([(short, 0), (long, 1)])
    assert mask.tolist()[0] == [True] * 3 + [False] * 5
    alone, _, _ = pad_batch([(short, 0)])
    with torch.no_grad():
        assert torch.allclose(model(tokens, mask)[0], model(alone)[0], atol=1e-5)


def test_a_checkpoint_carries_the_vocabulary_and_predict_writes_class_names(tmp_path, fast_args):
    assert main(["fit", "-c", EXAMPLE, *fast_args]) == 0
    run_dir = tmp_path / "res" / "example" / "version_0"
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    vocabulary = saved["TextDataModule"]
    assert vocabulary["tokens"][:2] == ["<pad>", "<unk>"] and vocabulary["classes"] == ["neg", "pos"]
    assert main(["predict", "-c", EXAMPLE, *fast_args, "--ckpt_path", "last"]) == 0
    with open(run_dir / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample_id", "predicted", "prob_neg", "prob_pos"] and len(rows) == 60
    assert {row["predicted"] for row in rows} <= {"neg", "pos"}


def tiny_bert(folder):
    """A small BERT and its tokenizer saved like a Hugging Face model folder (no download)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w for ws in KEYWORDS.values() for w in ws})]
    words += "the a film plot story actor scene it was and but with very some".split()
    BertTokenizer(vocab={word: i for i, word in enumerate(words)}).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


@needs_transformers
def test_a_pretrained_hugging_face_encoder_is_fine_tuned(tmp_path, fast_args):
    name = f"hf:{tiny_bert(tmp_path / 'tiny_bert')}"
    args = [*fast_args, f"--model.init_args.backbone={name}", f"--data.init_args.tokenizer={name}",
            "--data.init_args.max_length=64"]
    assert main(["fit", "-c", EXAMPLE, *args]) == 0
    assert main(["predict", "-c", EXAMPLE, *args, "--ckpt_path", "last"]) == 0
    assert (tmp_path / "res" / "example" / "version_0" / "predictions.csv").is_file()


@needs_transformers
def test_a_hugging_face_model_that_is_not_cached_offline_is_one_line(tmp_path, fast_args, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read when huggingface_hub was imported
    name = "hf:no-such-org/no-such-model"
    assert main(["fit", "-c", EXAMPLE, *fast_args, f"--model.init_args.backbone={name}",
                 f"--data.init_args.tokenizer={name}"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("ERROR: Hugging Face model 'no-such-org/no-such-model' is not in the cache ")


def test_an_hf_backbone_needs_its_own_tokenizer():
    with pytest.raises(ConfigError, match="set data.init_args.tokenizer to hf:bert-base-uncased"):
        TextClassifier(backbone="hf:bert-base-uncased", tokenizer="word")
