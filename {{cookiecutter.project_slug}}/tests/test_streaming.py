"""data/streaming.py and sh/optimize_data.py on this project's dataset (fake data in its real format): the chunks
hold each sample of each split once, in order, whether this process writes them or spawned writers do, and
StreamingDataModule serves them as the datamodule did. Skipped without the streaming extra (pip install litdata)."""
import json

import pytest
import torch
import yaml

from conftest import PROJECT_ROOT, datamodule_class, fake_data

litdata = pytest.importorskip("litdata")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A config naming the fake data, the datamodule it builds (set up), and the chunks optimize_data.py wrote."""
    import optimize_data

    root = tmp_path_factory.mktemp("streaming")
    data_dir = fake_data(root / "data")
    config = root / "data.yaml"
    config.write_text(yaml.safe_dump({"data": {"init_args": {"data_dir": str(data_dir)}}}))
    output = root / "chunks"
    configs = [str(PROJECT_ROOT / "config" / "example.yaml"), str(config)]
    assert optimize_data.main([*(part for c in configs for part in ("-c", c)), "--output", str(output),
                               "--workers", "1"]) == 0
    source = optimize_data.configured_datamodule(configs)  # as it was written: unaugmented
    assert isinstance(source, datamodule_class())
    source.prepare_data()
    source.setup("fit")
    source.setup("test")
    return source, output


def test_meta_json_holds_the_links_and_each_split_s_size(written):
    source, output = written
    meta = json.loads((output / "meta.json").read_text())
    assert meta["links"] == json.loads(json.dumps({name: getattr(source, name) for name in source.links}))
    assert meta["sizes"] == {"train": len(source.train_set), "val": len(source.val_set), "test": len(source.test_set)}


def test_the_streamed_splits_are_the_datamodule_s_samples(written):
    from data import StreamingDataModule

    source, output = written
    streaming = StreamingDataModule(input_dir=str(output), batch_size=16, num_workers=0)
    assert all(getattr(streaming, name) == getattr(source, name) for name in source.links)
    streaming.setup("fit")
    images = torch.cat([x for x, _ in streaming.train_dataloader()])
    assert len(images) == len(source.train_set) and tuple(images.shape[1:]) == tuple(source.train_set[0][0].shape)
    expected = [source.train_set[i][0] for i in range(len(source.train_set))]
    assert sorted(x.numpy().tobytes() for x in images) == sorted(x.numpy().tobytes() for x in expected)  # shuffled
    streaming.setup("predict")
    x, y = next(iter(streaming.predict_dataloader()))
    first = [source.test_set[i] for i in range(len(x))]
    assert torch.equal(x, torch.stack([s[0] for s in first]))  # in the order written
    assert torch.equal(y, torch.as_tensor([int(s[1]) for s in first]))


def test_parallel_writers_write_the_chunks_one_writer_does(written, tmp_path):
    from litdata import StreamingDataset

    import optimize_data

    source, output = written
    optimize_data.write(source.val_set, str(tmp_path / "val"), 2, "64MB", "val")  # spawned writers
    parallel, alone = StreamingDataset(str(tmp_path / "val")), StreamingDataset(str(output / "val"))
    assert len(parallel) == len(alone) == len(source.val_set)
    for i in range(len(alone)):
        assert torch.equal(parallel[i][0], alone[i][0]) and int(parallel[i][1]) == int(alone[i][1])


def test_an_output_holding_a_dataset_is_refused_without_force(written):
    import optimize_data
    from _experiments import UsageError

    _, output = written
    with pytest.raises(UsageError, match="holds a dataset already: pass --force"):
        optimize_data.main(["-c", str(PROJECT_ROOT / "config" / "example.yaml"), "--output", str(output)])
