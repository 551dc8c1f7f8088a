"""Small backbones written for this package (no torchvision)."""

from .resnet import (
    BasicBlock,
    CifarResNet,
    ClassifierHead,
    Stem,
    init_weights,
    make_resnet,
    parse_resnet_name,
    resnet20,
    resnet32,
    resnet56,
    resnet110,
)

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
