"""Data for SDL: generators with the true parameters (``_generators``) and loaders for your own
files (``_loaders``). Everything runs offline."""

from ._generators import make_digit_dictionary_classification, make_sdl_classification, make_topic_corpus
from ._loaders import load_image_folder, load_text_csv

__all__ = [
    "load_image_folder",
    "load_text_csv",
    "make_digit_dictionary_classification",
    "make_sdl_classification",
    "make_topic_corpus",
]
