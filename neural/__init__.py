"""neural: torch models behind scikit-learn's fit / predict interface.

Subpackages: :mod:`neural.backbones` (CIFAR ResNets written here),
:mod:`neural.local` (supervised local learning: BP, DGL, InfoPro, MAN, AugLocal),
:mod:`neural.segmentation` (DToP, a plain-ViT segmenter with dynamic token pruning),
:mod:`neural.video` (ASTR, ultrasound video segmentation with scanning-mode augmentation)
and :mod:`neural.text` (P2C, text classification with auxiliary preference learning);
modules :mod:`neural.base` (the estimator base class), :mod:`neural.datasets` (offline image
data) and :mod:`neural.memory` (activation-memory measurement).
"""

from .base import BaseTorchClassifier, BaseTorchEstimator
from .local import LocalLearningClassifier
from .memory import SavedTensorMemory
from .segmentation import DToPSegmenter
from .text import P2CClassifier
from .video import ASTRSegmenter, ScanModeConverter

__all__ = [
    "ASTRSegmenter",
    "BaseTorchClassifier",
    "BaseTorchEstimator",
    "DToPSegmenter",
    "LocalLearningClassifier",
    "P2CClassifier",
    "SavedTensorMemory",
    "ScanModeConverter",
]
