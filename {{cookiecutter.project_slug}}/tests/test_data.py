"""The datamodule reads this project's dataset in its real format, splits it reproducibly, and its fast
in-memory path (decoded once, cached, normalised per batch) gives what torchvision's datasets give."""
import os
import types

import pytest
import torch
from torchvision import transforms

import data
from conftest import DATASET
from contract import DatasetNotFoundError
from data import _common
from data._common import ResearchDataModule, default_num_workers, split_indices
from data._in_memory import TensorImageDataset, load_cached

DATAMODULE = getattr(data, "{{ cookiecutter.__dataset_class }}")


def make_datamodule(data_dir, **kwargs):
    return DATAMODULE(data_dir=str(data_dir), batch_size=16, **kwargs)


def test_batches_have_the_declared_shape_and_classes(data_dir):
    dm = make_datamodule(data_dir)
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape[1:]) == tuple(dm.input_shape)
    assert x.dtype == torch.float32 and y.dtype == torch.long
    assert 0 <= int(y.min()) and int(y.max()) < dm.num_classes
    assert abs(float(x.mean())) < 3.0  # normalised, not raw 0..255


def test_validation_split_is_fixed_and_disjoint():
    train_a, val_a = split_indices(100, 0.2, seed=7)
    train_b, val_b = split_indices(100, 0.2, seed=7)
    assert torch.equal(train_a, train_b) and torch.equal(val_a, val_b)
    assert len(val_a) == 20 and not set(train_a.tolist()) & set(val_a.tolist())


def test_every_split_is_served(data_dir):
    dm = make_datamodule(data_dir)
    dm.prepare_data()
    for stage in ("fit", "test", "predict"):
        dm.setup(stage)
    assert len(dm.val_dataloader()) > 0
    assert len(dm.test_dataloader()) > 0
    assert len(dm.predict_dataloader()) > 0


@pytest.mark.skipif(DATASET == "digits", reason="digits ships with scikit-learn: never missing")
def test_missing_files_give_one_clear_error(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as error:
        dm = make_datamodule(empty)
        dm.prepare_data()
        dm.setup("fit")
    message = str(error.value)
    assert str(empty) in message and "\n" not in message


IN_MEMORY = DATASET in ("mnist", "fashion_mnist", "cifar10", "digits")
in_memory_only = pytest.mark.skipif(not IN_MEMORY, reason="in-memory datasets only")


def torchvision_reference(data_dir, train: bool):
    """This split as torchvision's own dataset class reads it: ToTensor images (N, C, H, W) and labels."""
    from unittest import mock

    from torchvision import datasets

    if DATASET == "cifar10":  # the fake batches cannot match the md5 sums of the real download
        with mock.patch.object(datasets.cifar, "check_integrity", return_value=True):
            reference = datasets.CIFAR10(data_dir, train=train, transform=transforms.ToTensor())
    else:
        name = "MNIST" if DATASET == "mnist" else "FashionMNIST"
        reference = getattr(datasets, name)(data_dir, train=train, transform=transforms.ToTensor())
    images, labels = zip(*(reference[i] for i in range(len(reference))))
    return torch.stack(images), torch.tensor(labels)


@pytest.mark.skipif(DATASET not in ("mnist", "fashion_mnist", "cifar10"), reason="torchvision file formats only")
@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
def test_fast_path_equals_torchvision_dataset_from_the_same_files(data_dir, train):
    dm = make_datamodule(data_dir)
    images, labels = dm.load_split(train)
    reference_images, reference_labels = torchvision_reference(data_dir, train)
    assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == tuple(dm.input_shape)
    assert torch.equal(images.float().div(255), reference_images)  # ToTensor: uint8 / 255
    assert torch.equal(labels, reference_labels)

    x, y = TensorImageDataset(images, labels, dm.mean, dm.std).__getitems__(list(range(len(labels))))
    assert torch.allclose(x, transforms.Normalize(dm.mean, dm.std)(reference_images), atol=1e-5)
    assert torch.equal(y, reference_labels)


def test_batch_normalisation_matches_torchvision_normalize():
    images = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    x, _ = TensorImageDataset(images, torch.arange(6), mean, std).__getitems__([4, 0, 2])
    reference = torch.stack([transforms.Normalize(mean, std)(images[i].float() / 255) for i in (4, 0, 2)])
    assert torch.allclose(x, reference, atol=1e-5)


def test_cache_is_reused_until_a_raw_file_changes(tmp_path):
    raw, cache = tmp_path / "raw.bin", tmp_path / "cache.pt"
    raw.write_bytes(b"12345")
    decoded = []

    def decode():
        decoded.append(raw.read_bytes())
        return torch.tensor(list(raw.read_bytes()), dtype=torch.uint8), torch.tensor([len(decoded)])

    first = load_cached(cache, [raw], decode)
    second = load_cached(cache, [raw], decode)
    assert len(decoded) == 1 and cache.is_file()
    assert all(torch.equal(a, b) for a, b in zip(first, second))

    raw.write_bytes(b"123456")  # new size
    assert load_cached(cache, [raw], decode)[0].tolist() == list(b"123456") and len(decoded) == 2
    stat = raw.stat()
    os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, new modification time
    load_cached(cache, [raw], decode)
    assert len(decoded) == 3

    cache.write_bytes(b"not a torch file")  # a corrupt cache is rebuilt, not an error
    assert load_cached(cache, [raw], decode)[0].tolist() == list(b"123456") and len(decoded) == 4
    load_cached(cache, [raw], decode)
    assert len(decoded) == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


@in_memory_only
def test_datamodule_reads_its_cache_on_the_second_load(data_dir, monkeypatch):
    images, labels = make_datamodule(data_dir).load_split(train=True)
    assert list(data_dir.rglob("cache-train.pt"))

    def no_decoding(self, train, files):
        raise AssertionError("decoded again although the raw files did not change")

    monkeypatch.setattr(DATAMODULE, "decode", no_decoding)
    cached_images, cached_labels = make_datamodule(data_dir).load_split(train=True)
    assert torch.equal(cached_images, images) and torch.equal(cached_labels, labels)


@pytest.mark.skipif(DATASET not in ("mnist", "fashion_mnist", "cifar10"), reason="torchvision file formats only")
def test_changed_raw_files_are_decoded_again(data_dir):
    import fakes

    before = len(make_datamodule(data_dir).load_split(train=True)[1])
    if DATASET == "cifar10":
        fakes.write_cifar10(data_dir, n_per_batch=30)
    else:
        fakes.write_mnist(data_dir, "MNIST" if DATASET == "mnist" else "FashionMNIST", n_train=120)
    images, labels = make_datamodule(data_dir).load_split(train=True)
    reference_images, reference_labels = torchvision_reference(data_dir, train=True)
    assert len(labels) == len(reference_labels) != before
    assert torch.equal(images.float().div(255), reference_images) and torch.equal(labels, reference_labels)


def test_loader_settings_follow_the_machine(monkeypatch):
    monkeypatch.setattr(_common, "usable_cpus", lambda: 16)
    assert default_num_workers() == 8  # at most 8 per process
    assert default_num_workers(processes=4) == 3  # 4 cores per process, one of them trains
    monkeypatch.setattr(_common, "usable_cpus", lambda: 1)
    assert default_num_workers() == 0

    def on_gpu(trainer):
        module = ResearchDataModule()
        module.trainer = trainer
        return module.on_gpu

    def trainer_on(device_type):
        return types.SimpleNamespace(strategy=types.SimpleNamespace(root_device=torch.device(device_type)))

    assert not on_gpu(None) and not on_gpu(trainer_on("cpu"))
    assert on_gpu(trainer_on("cuda"))


@pytest.mark.skipif(DATASET == "imagefolder", reason="in-memory image sets only")
@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augmented"])
def test_device_resident_batches_are_the_batches_of_the_host_path(data_dir, augment):
    import pytorch_lightning as pl

    accelerator = "gpu" if torch.cuda.is_available() else "cpu"  # the same code path, on the CPU here
    batches = {}
    for resident in (False, True):
        dm = make_datamodule(data_dir, augment=augment, device_resident=resident)
        dm.trainer = pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False)
        dm.prepare_data()
        dm.setup("fit")
        where = dm.train_set.images.device
        assert where == (dm.trainer.strategy.root_device if resident else torch.device("cpu"))
        torch.manual_seed(7)  # as seed_everything leaves it: the shuffles and crops draw from it on both paths
        batches[resident] = [(x.cpu(), y.cpu()) for _, (x, y) in zip(range(4), dm.train_dataloader())]
        assert dm.train_dataloader().pin_memory is False or not resident
    assert len(batches[True]) == len(batches[False]) > 1
    for (x_host, y_host), (x_resident, y_resident) in zip(batches[False], batches[True]):
        assert torch.equal(x_host, x_resident) and torch.equal(y_host, y_resident)


@pytest.mark.skipif(DATASET == "imagefolder", reason="in-memory image sets only")
@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augmented"])
def test_under_ddp_each_rank_holds_only_its_shard_and_gets_the_batches_of_the_host_path(data_dir, augment):
    import pytorch_lightning as pl
    from lightning_fabric.utilities.data import _update_dataloader  # how Lightning gives each rank its sampler
    from torch.utils.data import DistributedSampler

    from data._in_memory import ShardLoader

    batches, shards = {}, {}
    for resident in (False, True):
        dm = make_datamodule(data_dir, augment=augment, device_resident=resident)
        dm.trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_checkpointing=False)
        dm.prepare_data()
        dm.setup("fit")
        assert dm.train_set.images.device.type == "cpu"  # the whole split stays in host memory
        for rank in (0, 1):
            for epoch in (0, 1):
                sampler = DistributedSampler(dm.train_set, num_replicas=2, rank=rank, shuffle=True, seed=3)
                loader = _update_dataloader(dm.train_dataloader(), sampler)
                assert isinstance(loader, ShardLoader) == resident
                torch.manual_seed(7)
                pass_ = iter(loader)
                sampler.set_epoch(epoch)  # after the iterator exists, as Lightning does when it resumes a run
                got = [next(pass_)]
                if resident:
                    shards[rank, epoch] = dm.train_set.held[0]  # held while its pass runs
                batches[resident, rank, epoch] = [(x.cpu(), y.cpu()) for x, y in got + list(pass_)]
    n = len(dm.train_set)
    for rank in (0, 1):
        for epoch in (0, 1):
            host, resident = batches[False, rank, epoch], batches[True, rank, epoch]
            assert len(host) == len(resident) > 1
            assert all(torch.equal(a, b) for (xa, ya), (xb, yb) in zip(host, resident) for a, b in ((xa, xb), (ya, yb)))
            assert len(shards[rank, epoch]) <= -(-n // 2)  # only this rank's share of the pass
    assert not torch.equal(shards[0, 0], shards[0, 1])  # a new share every epoch
    assert len(shards[0, 0]) + len(shards[1, 0]) >= n

    # A share lives for its pass only, and a batch with indices outside it still gets their own samples.
    assert dm.train_set.held is None
    pass_ = iter(loader)
    next(pass_)
    outside = [i for i in range(n) if dm.train_set.held[2][i] < 0][:5]
    assert outside and torch.equal(dm.train_set.__getitems__(outside)[1], dm.train_set.labels[outside])
    del pass_
    assert dm.train_set.held is None


@pytest.mark.skipif(DATASET == "imagefolder", reason="in-memory image sets only")
def test_device_resident_turns_itself_off_without_a_gpu(data_dir):
    import pytorch_lightning as pl

    for devices, strategy in ((1, "auto"), (2, "ddp")):
        dm = make_datamodule(data_dir)  # device_resident None: only on CUDA devices, when the data fits
        dm.trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False,
                                enable_checkpointing=False)
        assert dm.resident_device(10**6) is None
