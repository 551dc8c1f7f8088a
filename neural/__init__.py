"""neural: torch models behind scikit-learn's fit / predict interface.

Subpackages: :mod:`neural.backbones` (CIFAR ResNets written here),
:mod:`neural.local` (supervised local learning: BP, DGL, InfoPro, MAN, AugLocal),
:mod:`neural.segmentation` (DToP, a plain-ViT segmenter with dynamic token pruning),
:mod:`neural.video` (ASTR, ultrasound video segmentation with scanning-mode augmentation)
and :mod:`neural.text` (P2C, text classification with auxiliary preference learning);
modules :mod:`neural.callbacks` (checkpoints, early stopping, schedules, loggers, progress),
:mod:`neural.datasets` (offline data and lazy folder datasets) and :mod:`neural.memory`
(activation-memory measurement). Every estimator is a :class:`BaseTorchEstimator` and trains
through the same loop (``neural._trainer``).
"""

from ._estimator import BaseTorchClassifier, BaseTorchEstimator
from ._trainer import Phase
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
    "Phase",
    "SavedTensorMemory",
    "ScanModeConverter",
]
