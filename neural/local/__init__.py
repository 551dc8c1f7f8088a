"""Supervised local learning: BP, DGL, InfoPro, MAN and AugLocal."""

from ._aux import AugLocalAux, DGLAux, InfoProAux, MANAux, supervised_contrastive_loss
from ._classifier import LocalLearningClassifier
from ._net import METHODS, LocalNet
from ._schedule import (
    auglocal_depths,
    infopro_loss_weights,
    man_loss_weights,
    split_layers,
    uniform_sample_layers,
)

__all__ = [
    "METHODS",
    "AugLocalAux",
    "DGLAux",
    "InfoProAux",
    "LocalLearningClassifier",
    "LocalNet",
    "MANAux",
    "auglocal_depths",
    "infopro_loss_weights",
    "man_loss_weights",
    "split_layers",
    "supervised_contrastive_loss",
    "uniform_sample_layers",
]
