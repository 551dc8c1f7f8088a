"""Training under torch.distributed: 2 torchrun processes (gloo, CPU) against 1 process.

One torchrun launch fits every case of ``_ddp_cases`` in 2 processes; each test
compares a case with the same fit in this process. ``batch_size`` is the global
minibatch, so the two must give the same model up to float rounding.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from filelock import FileLock  # a dependency of torch

from _ddp_cases import CASES, fit, predictions, sync_bn_batch, weights
from neural import LocalLearningClassifier
from neural._data import epoch_batches
from neural._distributed import derived_seed, distributed_context, shard
from neural._syncbn import CPUSyncBatchNorm, synchronized_batchnorm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCH_TIMEOUT = 420  # seconds; a hang fails the test instead of the suite


def _environment():
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _start(launch, out, mode):
    cmd = [sys.executable, "-m", "torch.distributed.run", *launch,
           os.path.join(HERE, "_ddp_worker.py"), str(out), mode]
    return subprocess.Popen(cmd, env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finish(procs, timeout, what):
    """Wait for every launcher; kill them all (and their workers) past ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)  # torchrun and its workers
            pytest.fail(f"{what} did not finish in {timeout} s")
    return outputs


def torchrun(out, mode, timeout=LAUNCH_TIMEOUT):
    """Run ``_ddp_worker.py OUT MODE`` in 2 processes; (return code, output, seconds)."""
    start = time.perf_counter()
    proc = _start(["--standalone", "--nproc_per_node=2"], out, mode)
    output, = _finish([proc], timeout, f"torchrun {mode}")
    return proc.returncode, output, time.perf_counter() - start


@pytest.fixture(scope="session")
def two_processes(tmp_path_factory):
    # one launch for the whole run, also when pytest-xdist spreads these tests over workers
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / "ddp_fits"
    with FileLock(str(out) + ".lock", timeout=LAUNCH_TIMEOUT + 60):
        if not out.exists():
            out.mkdir()
            result = "timeout\nthe torchrun launch did not finish (see the first failure)"
            try:
                code, output, _ = torchrun(out, "fits")
                result = f"{code}\n{output[-5000:]}"
            finally:
                (out / "launch.txt").write_text(result)
    code, _, output = (out / "launch.txt").read_text().partition("\n")
    assert code == "0", output
    return out


def _load(out, case, rank):
    with np.load(os.path.join(out, f"{case}_rank{rank}.npz")) as f:
        arrays = dict(f)
    with open(os.path.join(out, f"{case}_rank{rank}.json")) as f:
        record = json.load(f)
    return arrays, record


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_equal_one_process(two_processes, case):
    est, X = fit(case)  # one process, same global batch
    ref_w, ref_p = weights(est), predictions(est, X)
    ranks = [_load(two_processes, case, r) for r in (0, 1)]
    for arrays, record in ranks:
        assert record["n_iter"] == est.n_iter_
        np.testing.assert_allclose(record["loss_curve"], est.loss_curve_, rtol=1e-5)
        np.testing.assert_allclose(arrays.pop("proba"), ref_p, atol=1e-5)
        assert arrays.keys() == ref_w.keys()
        for key, value in ref_w.items():
            np.testing.assert_allclose(arrays[key], value, atol=1e-5, err_msg=key)
    # every process holds the same model, bit for bit
    for key in ranks[0][0]:
        np.testing.assert_array_equal(ranks[0][0][key], ranks[1][0][key])
    # rank 0's file loads in this single process and predicts as the 1-process fit
    loaded = type(est).load(os.path.join(two_processes, f"{case}_saved_rank0.pt"))
    np.testing.assert_allclose(predictions(loaded, X), ref_p, atol=1e-5)
    assert not os.path.exists(os.path.join(two_processes, f"{case}_saved_rank1.pt"))


@pytest.mark.slow
def test_stop_in_one_process_stops_both(two_processes):
    for rank in (0, 1):
        _, record = _load(two_processes, "astr", rank)
        assert record["n_iter"] == CASES["astr"]["stop_at"] < CASES["astr"]["params"]["max_iter"]


@pytest.mark.slow
def test_only_rank_zero_writes_checkpoints_logs_and_progress(two_processes):
    assert sorted(os.listdir(two_processes / "ckpt_rank0")) == ["best.pt", "epoch_0001.pt",
                                                                "epoch_0002.pt"]
    assert (two_processes / "log_rank0.csv").exists()
    assert not (two_processes / "ckpt_rank1").exists()
    assert not (two_processes / "log_rank1.csv").exists()
    assert "LocalLearningClassifier" in (two_processes / "bar_rank0.txt").read_text()
    assert (two_processes / "bar_rank1.txt").read_text() == ""


@pytest.mark.slow
def test_sync_batchnorm_normalises_over_the_global_batch(two_processes):
    x, grad = sync_bn_batch()
    bn = torch.nn.BatchNorm2d(3)
    xs = x.clone().requires_grad_(True)
    y = bn(xs)
    y.backward(grad)
    parts = [dict(np.load(two_processes / f"syncbn_rank{r}.npz")) for r in (0, 1)]
    np.testing.assert_allclose(np.concatenate([p["y"] for p in parts]), y.detach(), atol=1e-5)
    np.testing.assert_allclose(np.concatenate([p["dx"] for p in parts]), xs.grad, atol=1e-5)
    for p in parts:
        # per-process parameter gradients sum to the global one (DDP averages the weighted)
        np.testing.assert_allclose(p["running_mean"], bn.running_mean, atol=1e-6)
        np.testing.assert_allclose(p["running_var"], bn.running_var, atol=1e-6)
    np.testing.assert_allclose(parts[0]["dw"] + parts[1]["dw"], bn.weight.grad, atol=1e-5)
    np.testing.assert_allclose(parts[0]["db"] + parts[1]["db"], bn.bias.grad, atol=1e-5)


@pytest.mark.slow
def test_off_trains_alone_and_different_data_is_refused(two_processes):
    for rank in (0, 1):
        with open(two_processes / f"off_rank{rank}.json") as f:
            assert json.load(f)["n_iter"] == 1
        with open(two_processes / f"mismatch_rank{rank}.json") as f:
            error = json.load(f)["error"]
        assert error is not None and "different data" in error
        assert "[(48, None), (64, None)]" in error


@pytest.mark.slow
def test_a_failing_process_stops_the_other_with_its_error(tmp_path):
    code, output, seconds = torchrun(tmp_path, "fail", timeout=300)
    assert code != 0
    assert "rank 1 failed on purpose" in output
    # torchrun stopped rank 0, which was waiting for rank 1 in a collective; far below the
    # process group's timeout of 30 minutes
    assert not (tmp_path / "done_rank0").exists()
    assert seconds < 240


@pytest.mark.slow
def test_two_machines_of_one_process_equal_one_process(tmp_path):
    # torchrun --nnodes=2 on one host: two launchers meet at node 0's store, as machines would
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [_start(["--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
                     "--master_addr=127.0.0.1", f"--master_port={port}"], tmp_path, "nodes")
             for node in (0, 1)]
    outputs = _finish(procs, LAUNCH_TIMEOUT, "torchrun --nnodes=2")
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-5000:]
    est, X = fit("p2c")
    for rank in (0, 1):
        arrays, record = _load(tmp_path, "nodes_p2c", rank)
        assert record["loss_curve"] == pytest.approx(est.loss_curve_, rel=1e-5)
        np.testing.assert_allclose(arrays.pop("proba"), predictions(est, X), atol=1e-5)
        for key, value in weights(est).items():
            np.testing.assert_allclose(arrays[key], value, atol=1e-5, err_msg=key)


# ----------------------------------------------------------------- in one process
def test_shards_cover_every_global_batch_once():
    for n in range(1, 12):
        batch = list(range(100, 100 + n))
        for world in (1, 2, 3, 4):
            parts = [shard(batch, r, world) for r in range(world)]
            assert sum(parts, []) == batch
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_last_batch_too_small_for_every_process_is_merged():
    rng = np.random.RandomState(0)
    sizes = [len(b) for b in epoch_batches(np.arange(10), 4, rng, min_last=3)]
    assert sizes == [4, 6]
    assert [len(b) for b in epoch_batches(np.arange(10), 4, None)] == [4, 4, 2]
    assert [len(b) for b in epoch_batches(np.arange(9), 4, None)] == [4, 5]


def test_no_group_means_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed_context("auto", torch.device("cpu")) is None
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun's variable, but "off" trains alone
    assert distributed_context("off", torch.device("cpu")) is None


def test_derived_seeds_differ_by_process_and_epoch():
    seeds = {derived_seed(7, epoch, rank) for epoch in range(3) for rank in range(4)}
    assert len(seeds) == 12 and all(0 <= s < 2**31 for s in seeds)


def test_sync_batchnorm_swaps_in_and_out_sharing_parameters():
    clf = LocalLearningClassifier(method="dgl", n_local_modules=2, backbone="resnet8", width=4,
                                  device="cpu")
    clf.classes_, clf.input_shape_ = np.arange(3), (3, 8, 8)
    net = clf._build_module()
    before = {name: m for name, m in net.named_modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    weights_before = {name: m.weight for name, m in before.items()}
    with synchronized_batchnorm(net, torch.device("cpu")) as n_swapped:
        during = {name: m for name, m in net.named_modules()
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        assert n_swapped == len(before) > 0
        assert all(isinstance(m, CPUSyncBatchNorm) for m in during.values())
        assert all(during[k].weight is weights_before[k] for k in before)
        assert all(during[k].running_mean is before[k].running_mean for k in before)
        # outside a process group it is ordinary batch norm
        x = torch.randn(4, 3, 8, 8)
        out = net(x)
    after = dict(net.named_modules())
    assert all(after[k] is before[k] for k in before)
    np.testing.assert_allclose(out.detach(), net(x).detach(), atol=1e-6)


def test_units_of_local_learning_hold_each_parameter_once():
    clf = LocalLearningClassifier(method="man", n_local_modules=3, backbone="resnet8", width=4,
                                  device="cpu")
    clf.classes_, clf.input_shape_ = np.arange(3), (3, 8, 8)
    clf.module_ = clf._build_module()
    units = clf._distributed_units()
    assert len(units) == 3  # one per local loss
    ids = [id(p) for unit in units for m in unit for p in m.parameters() if p.requires_grad]
    trainable = [id(p) for p in clf.module_.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids)) and set(ids) == set(trainable)
