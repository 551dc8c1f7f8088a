"""Sphinx configuration of the sdlearn documentation.

Builds offline: no intersphinx, no remote assets at build time (MathJax is loaded by the
browser only). Build with::

    python -m sphinx -b html -W --keep-going docs docs/_build/html

Pass ``-D plot_gallery=0`` to skip running the gallery examples.
"""

import importlib.util
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # examples and the build never need a display

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# import the working tree even when sdlearn is not installed (editable installs work anyway)
sys.path.insert(0, str(ROOT))

import sdlearn  # noqa: E402

# -- project ---------------------------------------------------------------------------------
project = "sdlearn"
author = "the sdlearn developers"
copyright = "the sdlearn developers"
release = sdlearn.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# no intersphinx: the build machines have no network
intersphinx_mapping = {}

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"  # `x` renders as code, never as a broken cross-reference
pygments_style = "sphinx"


# -- autodoc / autosummary / numpydoc --------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # types come from the numpydoc sections
autodoc_member_order = "bysource"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# the estimator docstrings use scikit-learn's type vocabulary ("array-like of shape ...");
# do not try to resolve every word of it as a cross-reference
numpydoc_xref_param_type = False

# -- sphinx-gallery --------------------------------------------------------------------------


def _torch_available():
    return importlib.util.find_spec("torch") is not None


# Run every examples/**/plot_*.py; without torch the examples in examples/neural/ are only
# rendered (their code is shown, not executed), so the docs build anywhere the core runs.
_SEP = "\\" + os.sep if os.sep == "\\" else os.sep
if _torch_available():
    _filename_pattern = _SEP + "plot_"
else:
    _filename_pattern = "examples" + _SEP + "plot_"

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # subfolders with their own README.txt (e.g. examples/neural/) become subsections
    "filename_pattern": _filename_pattern,
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("sdlearn",),
    "backreferences_dir": "generated",
    "reference_url": {"sdlearn": None},
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": "True",
}

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sdlearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "use_edit_page_button": False,
}
html_static_path = []
html_show_sourcelink = False


# -- hooks -----------------------------------------------------------------------------------


def _skip_member(app, what, name, obj, skip, options):
    """Skip the ``set_*_request`` methods that scikit-learn generates for metadata routing.

    They are class attributes of every estimator with routed parameters (documented on
    scikit-learn's side) and their docstrings point to scikit-learn's own glossary.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _neural_pages_exist():
    return any(page.name != "index.rst" for page in (HERE / "neural").glob("*.rst"))


def _drop_empty_neural_toctree(app, docname, source):
    """docs/neural/index.rst globs the neural pages, which are written separately; until the
    first one exists the glob would match nothing, which Sphinx reports as a warning."""
    if docname == "neural/index" and not _neural_pages_exist():
        text = source[0]
        source[0] = text[: text.find(".. toctree::")] + "No pages yet.\n"


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("source-read", _drop_empty_neural_toctree)
