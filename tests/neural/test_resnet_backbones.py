import pytest
import torch

from neural.backbones import BasicBlock, make_resnet, parse_resnet_name


@pytest.mark.parametrize(
    "name, n_params, n_layers",
    # parameter counts of the reference CIFAR ResNets with projection shortcuts
    [("resnet32", 466_906, 16), ("resnet110", 1_730_714, 55), ("resnet20", None, 10)],
)
def test_reference_sizes(name, n_params, n_layers):
    model = make_resnet(name)
    assert len(model.layers) == n_layers
    if n_params is not None:
        assert sum(p.numel() for p in model.parameters()) == n_params


def test_stages_widths_and_strides():
    model = make_resnet("resnet20", width=4, in_channels=1, n_classes=7)
    assert model.layer_channels == [4] * 4 + [8] * 3 + [16] * 3
    assert model.layer_strides == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    x = torch.randn(3, 1, 16, 16)
    h = x
    sizes = []
    for layer in model.layers:
        h = layer(h)
        sizes.append(h.shape[-1])
    assert sizes == [16] * 4 + [8] * 3 + [4] * 3
    assert model(x).shape == (3, 7)


def test_projection_shortcut_only_where_shape_changes():
    model = make_resnet("resnet20")
    projections = [
        i for i, layer in enumerate(model.layers)
        if isinstance(layer, BasicBlock) and not isinstance(layer.shortcut, torch.nn.Identity)
    ]
    assert projections == [4, 7]


def test_he_fan_out_init():
    model = make_resnet("resnet8", width=16)
    w = model.layers[1].conv1.weight
    expected = (2.0 / (3 * 3 * 16)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.1


@pytest.mark.parametrize("name", ["resnet", "resnet21", "resnet2", "vgg16", 32])
def test_bad_names(name):
    with pytest.raises(ValueError, match="resnet"):
        parse_resnet_name(name)
