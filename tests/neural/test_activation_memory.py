import pytest
import torch
from torch import nn

from neural.memory import SavedTensorMemory


def test_counts_saved_activations_exactly():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.randn(32, 64)
    with SavedTensorMemory(mlp.parameters()) as mem:
        loss = mlp(x).sum()
        # input (32x64) + hidden (32x128), float32; weights and ReLU twice not counted
        assert mem.current_bytes == 4 * (32 * 64 + 32 * 128)
        loss.backward()
    assert mem.peak_bytes == 4 * (32 * 64 + 32 * 128)
    assert mem.current_bytes == 0


def test_without_exclusion_parameters_are_counted():
    lin = nn.Linear(16, 16)
    with SavedTensorMemory() as mem:
        lin(torch.randn(4, 16, requires_grad=True)).sum().backward()
    assert mem.peak_bytes > 4 * 4 * 16


def test_freeing_graphs_lowers_the_peak():
    layers = [nn.Linear(100, 100) for _ in range(4)]
    params = [p for layer in layers for p in layer.parameters()]
    x = torch.randn(50, 100)

    with SavedTensorMemory(params) as joint:
        h = x
        for layer in layers:
            h = torch.tanh(layer(h))
        h.sum().backward()
    with SavedTensorMemory(params) as local:
        h = x
        for layer in layers:
            h = torch.tanh(layer(h))
            h.sum().backward()
            h = h.detach()
    assert local.peak_bytes < joint.peak_bytes / 2
    assert local.current_bytes == joint.current_bytes == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_peak_memory():
    from neural.memory import cuda_peak_memory

    dev = torch.device("cuda")
    lin = nn.Linear(256, 256).to(dev)
    x = torch.randn(1024, 256, device=dev)
    peak = cuda_peak_memory(lambda: lin(x).relu().sum().backward(), dev)
    assert peak >= 1024 * 256 * 4
