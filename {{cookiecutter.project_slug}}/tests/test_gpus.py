"""Free-GPU selection picks the least-busy visible GPUs, from a fake nvidia-smi; it is a no-op on the CPU."""
from argparse import Namespace

import pytest

from contract import ConfigError
from runtime.preflight import SELECTED_GPUS_ENV, GpuStatus, least_busy, parse_nvidia_smi, select_gpus, visible_gpus

# index, uuid, utilisation %, used memory MiB -- physical GPUs 1 and 3 are idle, 3 uses less memory
NVIDIA_SMI = """\
0, GPU-aaaa0000, 90, 30000
1, GPU-bbbb1111, 0, 5000
2, GPU-cccc2222, 40, 100
3, GPU-dddd3333, 0, 200
"""
GPUS = parse_nvidia_smi(NVIDIA_SMI)


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch):
    """Tests run as a plain process, even inside a SLURM job or under torchrun."""
    for name in ("SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "CUDA_VISIBLE_DEVICES", SELECTED_GPUS_ENV):
        monkeypatch.delenv(name, raising=False)


def trainer(devices, accelerator="gpu"):
    return Namespace(devices=devices, accelerator=accelerator)


def fake_query(gpus=GPUS):
    calls = []

    def query():
        calls.append(1)
        return gpus

    query.calls = calls
    return query


def test_asking_for_n_gpus_picks_the_n_least_busy():
    config, environ = trainer(2), {}
    assert select_gpus(config, cuda_available=True, query=fake_query(), environ=environ) == [1, 3]
    assert config.devices == [1, 3]
    assert environ[SELECTED_GPUS_ENV] == "1,3"  # inherited by the DDP worker processes


def test_equal_utilisation_is_decided_by_used_memory():
    assert select_gpus(trainer(1), cuda_available=True, query=fake_query(), environ={}) == [3]


def test_auto_accelerator_selects_when_cuda_is_there():
    config = trainer(1, accelerator="auto")
    assert select_gpus(config, cuda_available=True, query=fake_query(), environ={}) == [3]


def test_visible_devices_are_respected_and_mapped_to_cuda_ids():
    # Only physical GPUs 0 and 2 are visible: CUDA calls them 0 and 1; physical 2 is the less busy.
    config = trainer(1)
    assert select_gpus(config, cuda_available=True, query=fake_query(), environ={"CUDA_VISIBLE_DEVICES": "0,2"}) == [1]


def test_visible_devices_given_as_uuids_are_mapped():
    visible = visible_gpus(GPUS, "GPU-dddd3333,GPU-aaaa")
    assert [gpu.index for gpu in visible] == [3, 0]
    assert least_busy(visible, 1) == [0]  # CUDA id 0 is physical GPU 3


def test_unmappable_visible_devices_leave_the_choice_to_lightning():
    config = trainer(1)
    mig = {"CUDA_VISIBLE_DEVICES": "MIG-1"}
    assert select_gpus(config, cuda_available=True, query=fake_query(), environ=mig) is None
    assert config.devices == 1


def test_workers_reuse_the_choice_of_the_launching_process():
    query = fake_query()
    config = trainer(2)
    assert select_gpus(config, cuda_available=True, query=query, environ={SELECTED_GPUS_ENV: "0,2"}) == [0, 2]
    assert not query.calls


@pytest.mark.parametrize("devices", [[0, 1], "0,1", "auto", -1, "-1"])
def test_explicit_ids_auto_and_all_are_left_alone(devices):
    query = fake_query()
    config = trainer(devices)
    assert select_gpus(config, cuda_available=True, query=query, environ={}) is None
    assert config.devices == devices and not query.calls


@pytest.mark.parametrize("accelerator", ["cpu", "auto", "gpu"])
def test_no_op_without_cuda(accelerator):
    query = fake_query()
    config = trainer(2, accelerator)
    assert select_gpus(config, cuda_available=False, query=query, environ={}) is None
    assert config.devices == 2 and not query.calls


def test_no_op_under_torchrun(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "42")
    query = fake_query()
    assert select_gpus(trainer(2), cuda_available=True, query=query, environ={}) is None
    assert not query.calls


def test_no_op_when_nvidia_smi_is_missing():
    config = trainer(2)
    assert select_gpus(config, cuda_available=True, query=fake_query(None), environ={}) is None
    assert config.devices == 2


def test_more_gpus_than_visible_is_one_clear_error():
    with pytest.raises(ConfigError, match="asks for 5 GPUs but 4 are visible"):
        select_gpus(trainer(5), cuda_available=True, query=fake_query(), environ={})


def test_unknown_load_values_rank_last():
    gpus = parse_nvidia_smi("0, GPU-a, [N/A], [N/A]\n1, GPU-b, 70, 100\n")
    assert gpus[0] == GpuStatus(0, "GPU-a", float("inf"), float("inf"))
    assert least_busy(gpus, 1) == [1]
