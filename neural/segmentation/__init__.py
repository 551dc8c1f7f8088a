"""Semantic segmentation: DToP, a plain-ViT segmenter with dynamic token pruning."""

from ._data import load_segmentation_folder, make_segmentation
from ._flops import block_flops, count_flops, dtop_flops, unpruned_flops
from ._segmenter import DToPSegmenter, PruningReport, mean_iou
from ._vit import DToPOutput, DToPViT, select_exits

__all__ = [
    "DToPOutput",
    "DToPSegmenter",
    "DToPViT",
    "PruningReport",
    "block_flops",
    "count_flops",
    "dtop_flops",
    "load_segmentation_folder",
    "make_segmentation",
    "mean_iou",
    "select_exits",
    "unpruned_flops",
]
