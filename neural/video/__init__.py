"""Ultrasound video segmentation: ASTR and scanning-mode augmentation."""

from ._data import load_ultrasound_folder, make_ultrasound_videos
from ._metrics import dice_score, segmentation_scores
from ._model import ASTRNet, ASTROutput, ProductFusion, astr_loss, select_sparse_tokens
from ._scan import (
    FanGeometry,
    ScanModeConverter,
    detect_scan_mode,
    fan_geometry,
    fan_mask,
    linear_to_sector,
    sector_to_linear,
)
from ._segmenter import ASTRSegmenter, make_clips

__all__ = [
    "ASTRNet",
    "ASTROutput",
    "ASTRSegmenter",
    "FanGeometry",
    "ProductFusion",
    "ScanModeConverter",
    "astr_loss",
    "detect_scan_mode",
    "dice_score",
    "fan_geometry",
    "fan_mask",
    "linear_to_sector",
    "load_ultrasound_folder",
    "make_clips",
    "make_ultrasound_videos",
    "sector_to_linear",
    "segmentation_scores",
    "select_sparse_tokens",
]
