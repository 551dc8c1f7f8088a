import pytest
import torch
from torch import nn

from neural.memory import LiveTensorMemory, SavedTensorMemory, step_peak_memory

from _small import NAMES, data, make


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


# ------------------------------------------------------------- live tensors: peak_memory_bytes_
def _nbytes(tensors):
    return sum(t.untyped_storage().nbytes() for t in tensors)


def test_live_memory_counts_outputs_and_their_frees():
    lin = nn.Linear(1000, 10)
    x = torch.ones(100, 1000)
    with LiveTensorMemory(resident=[x, *lin.parameters()]) as mem:
        assert mem.current_bytes == _nbytes([x, *lin.parameters()])
        h = lin(x)
        y = torch.relu(h)
        assert mem.current_bytes == _nbytes([x, *lin.parameters(), h, y])
        view = y[:10]  # a view shares its storage: counted once
        assert mem.current_bytes == _nbytes([x, *lin.parameters(), h, y])
        del h, y, view
        assert mem.current_bytes == _nbytes([x, *lin.parameters()])
    assert mem.peak_bytes == _nbytes([x, *lin.parameters()]) + 2 * 4 * 100 * 10


def test_live_memory_uncounts_resident_tensors_freed_inside():
    a, b = torch.ones(1000), torch.ones(10)
    with LiveTensorMemory(resident=iter([a, b])) as mem:
        del a  # the only reference: its storage is freed
        assert mem.current_bytes == 40
    assert mem.peak_bytes == 4040


def test_live_memory_stops_listening_after_the_context():
    x = torch.ones(1000)
    with LiveTensorMemory() as mem:
        y = x * 2
    held = mem.current_bytes
    del y
    assert mem.current_bytes == held == 4000


def test_live_memory_ignores_other_devices():
    with LiveTensorMemory(device="meta") as mem:
        torch.ones(1000) * 2
    assert mem.peak_bytes == 0


def _kineto_peak(fn):
    """Peak of the bytes the C++ allocator handed out while ``fn`` ran (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = getattr(prof.profiler, "kineto_results", None)
    if events is None:
        pytest.skip("this torch's profiler exposes no allocation events")
    allocations = sorted((e for e in events.events() if e.name() == "[memory]"),
                         key=lambda e: e.start_ns())
    current = peak = 0
    for e in allocations:
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def test_live_memory_agrees_with_the_allocator_trace():
    # an independent count: every allocation and free of torch's CPU allocator, as the
    # profiler records them (allocator caching plays no part in either figure)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(1024, 256), torch.randint(0, 10, (1024,))

    def step():
        nn.functional.cross_entropy(mlp(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)  # nothing allocated before a step is freed inside it

    def resident():
        yield from mlp.parameters()
        for state in opt.state.values():
            yield from state.values()
        yield from (x, y)

    step()
    live = step_peak_memory(step, torch.device("cpu"), resident())
    assert live == _nbytes(resident()) + _kineto_peak(step)
    assert live > 4 * 1024 * 512  # the hidden activations at least


@pytest.mark.parametrize("name", NAMES)
def test_every_estimator_records_peak_memory(name):
    X, y, params = data(name)
    est = make(name, max_iter=2).fit(X, y, **params)
    weights = sum(p.numel() * p.element_size() for p in est.module_.parameters())
    assert isinstance(est.peak_memory_bytes_, int)
    # weights, their gradients and the saved activations are all held at some point
    assert est.peak_memory_bytes_ > weights + est.peak_activation_bytes_ / 2
    assert est.peak_cuda_memory_bytes_ is None


def test_peak_memory_is_taken_on_a_full_batch():
    from neural import LocalLearningClassifier
    from neural.datasets import make_shapes

    X, y = make_shapes(100, image_size=8, random_state=0)

    def fit(n, epochs, batch_size=64):
        return LocalLearningClassifier(method="bp", backbone="resnet8", width=4, max_iter=epochs,
                                       batch_size=batch_size, random_state=0,
                                       device="cpu").fit(X[:n], y[:n])

    one_epoch, two_epochs = fit(100, 1), fit(100, 2)
    # one epoch: steps of 64 and 36 samples, the peak is the 36's; a second epoch brings a full
    # batch, which replaces it
    assert one_epoch.peak_memory_bytes_ < two_epochs.peak_memory_bytes_
    assert two_epochs.peak_memory_bytes_ > two_epochs.peak_activation_bytes_
    single = fit(64, 1)  # one step in all: measured on it
    assert single.peak_memory_bytes_ > single.peak_activation_bytes_
