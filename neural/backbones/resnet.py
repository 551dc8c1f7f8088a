"""CIFAR-style residual networks (ResNet-20/32/44/56/110 and smaller variants).

The network is exposed as a flat sequence of *layers*: the stem (conv-BN-ReLU)
followed by every basic block, plus a separate classification head. Local
learning cuts this sequence into gradient-isolated modules, so keeping the
layers in one flat :class:`torch.nn.ModuleList` is the whole point of the
layout.
"""

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "ClassifierHead",
    "Stem",
    "init_weights",
    "make_resnet",
    "parse_resnet_name",
    "resnet20",
    "resnet32",
    "resnet56",
    "resnet110",
]


class BasicBlock(nn.Module):
    """Residual basic block: two 3x3 convolutions with batch norm.

    ``conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN``, added to the shortcut,
    then ReLU. The shortcut is the identity, or a 1x1 convolution + BN
    (projection, "option B") when the stride or the channel count changes.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    stride : int, default=1
        Stride of the first convolution (and of the projection shortcut).
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x):
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, out_channels, H', W')
            Block output.
        """
        # in place where autograd allows it (batch norm keeps its input, not its output), as
        # the reference code does: no block-sized temporaries besides the saved activations
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out, inplace=True)


class Stem(nn.Module):
    """The first layer: ``conv3x3 -> BN -> ReLU`` with stride 1 (no max-pool).

    Parameters
    ----------
    in_channels : int
        Channels of the input image.
    out_channels : int
        Channels of the output.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 1

    def forward(self, x):
        """Apply the stem.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, out_channels, H, W)
            Stem output.
        """
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ClassifierHead(nn.Module):
    """Global average pooling followed by a linear layer.

    Parameters
    ----------
    in_channels : int
        Channels of the last feature map.
    n_classes : int
        Number of output logits.
    """

    def __init__(self, in_channels, n_classes):
        super().__init__()
        self.fc = nn.Linear(in_channels, n_classes)

    def forward(self, x):
        """Pool and classify features.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def init_weights(module):
    """He fan-out normal init for convolutions, unit/zero BN (reference init).

    Parameters
    ----------
    module : torch.nn.Module
        Every ``Conv2d`` and ``BatchNorm`` inside is re-initialised in place;
        ``Linear`` layers keep PyTorch's default.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CifarResNet(nn.Module):
    """CIFAR-style ResNet: stem, three stages of basic blocks, pooled linear head.

    Stage ``s`` (0, 1, 2) has ``width * 2**s`` channels; the first block of
    stages 1 and 2 has stride 2 and a projection shortcut. With
    ``blocks_per_stage=(n, n, n)`` and ``width=16`` this is ResNet-(6n+2).

    Parameters
    ----------
    blocks_per_stage : tuple of int, default=(3, 3, 3)
        Number of basic blocks in each stage.
    width : int, default=16
        Channels of the stem and the first stage.
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Number of output logits.

    Attributes
    ----------
    layers : torch.nn.ModuleList
        The stem followed by every basic block, in order. Local learning splits
        this list into modules.
    head : ClassifierHead
        Global average pooling + linear layer on the last layer's output.
    """

    def __init__(self, blocks_per_stage=(3, 3, 3), width=16, in_channels=3, n_classes=10):
        super().__init__()
        layers = [Stem(in_channels, width)]
        channels = width
        for stage, n_blocks in enumerate(blocks_per_stage):
            out = width * 2**stage
            for b in range(n_blocks):
                stride = 2 if (stage > 0 and b == 0) else 1
                layers.append(BasicBlock(channels, out, stride))
                channels = out
        self.layers = nn.ModuleList(layers)
        self.head = ClassifierHead(channels, n_classes)
        self.blocks_per_stage = tuple(blocks_per_stage)
        self.width = width
        init_weights(self)

    @property
    def layer_channels(self):
        """list of int: output channels of every layer."""
        return [layer.out_channels for layer in self.layers]

    @property
    def layer_strides(self):
        """list of int: stride of every layer (2 where the resolution halves)."""
        return [layer.stride for layer in self.layers]

    def features(self, x):
        """Run every layer.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Input batch.

        Returns
        -------
        out : torch.Tensor
            The last feature map.
        """
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x):
        """Classify images.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.head(self.features(x))


_DEPTH_RE = re.compile(r"^resnet(\d+)$")


def make_resnet(name, *, width=16, in_channels=3, n_classes=10):
    """Build a CIFAR ResNet from its name, ``"resnet{6n+2}"``.

    Parameters
    ----------
    name : str
        ``"resnet8"``, ``"resnet14"``, ``"resnet20"``, ``"resnet32"``,
        ``"resnet44"``, ``"resnet56"``, ``"resnet110"``, ... (any depth 6n+2
        with n >= 1).
    width : int, default=16
        Channels of the first stage (16 in the papers); smaller widths give
        fast CPU models.
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Number of output logits.

    Returns
    -------
    model : CifarResNet
        A freshly initialised network.
    """
    n = parse_resnet_name(name)
    return CifarResNet((n, n, n), width=width, in_channels=in_channels, n_classes=n_classes)


def parse_resnet_name(name):
    """Return the number of blocks per stage ``n`` of ``"resnet{6n+2}"``.

    Parameters
    ----------
    name : str
        Backbone name.

    Returns
    -------
    n : int
        Blocks per stage.

    Raises
    ------
    ValueError
        If ``name`` is not of the form ``resnet{6n+2}`` with ``n >= 1``.
    """
    match = _DEPTH_RE.match(name) if isinstance(name, str) else None
    depth = int(match.group(1)) if match else -1
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"backbone={name!r} is not a CIFAR ResNet name; use 'resnet{{6n+2}}' "
            "such as 'resnet8', 'resnet20', 'resnet32', 'resnet56' or 'resnet110'."
        )
    return (depth - 2) // 6


def resnet20(**kwargs):
    """Build ResNet-20 (3 blocks per stage).

    Parameters
    ----------
    **kwargs
        ``width``, ``in_channels``, ``n_classes``, as for :func:`make_resnet`.

    Returns
    -------
    model : CifarResNet
        A freshly initialised network.
    """
    return make_resnet("resnet20", **kwargs)


def resnet32(**kwargs):
    """Build ResNet-32 (5 blocks per stage).

    Parameters
    ----------
    **kwargs
        ``width``, ``in_channels``, ``n_classes``, as for :func:`make_resnet`.

    Returns
    -------
    model : CifarResNet
        A freshly initialised network.
    """
    return make_resnet("resnet32", **kwargs)


def resnet56(**kwargs):
    """Build ResNet-56 (9 blocks per stage).

    Parameters
    ----------
    **kwargs
        ``width``, ``in_channels``, ``n_classes``, as for :func:`make_resnet`.

    Returns
    -------
    model : CifarResNet
        A freshly initialised network.
    """
    return make_resnet("resnet56", **kwargs)


def resnet110(**kwargs):
    """Build ResNet-110 (18 blocks per stage).

    Parameters
    ----------
    **kwargs
        ``width``, ``in_channels``, ``n_classes``, as for :func:`make_resnet`.

    Returns
    -------
    model : CifarResNet
        A freshly initialised network.
    """
    return make_resnet("resnet110", **kwargs)
