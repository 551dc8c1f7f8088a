"""Sphinx configuration of the sdlearn documentation.

Builds offline: no intersphinx, no remote assets at build time (MathJax is loaded by the
browser only). Build in nitpicky mode (every cross-reference must resolve) with::

    python -m sphinx -n -b html -W --keep-going docs docs/_build/html

Pass ``-D plot_gallery=0`` to skip running the gallery examples.
"""

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import matplotlib
from sklearn.exceptions import ConvergenceWarning

matplotlib.use("Agg")  # examples and the build never need a display
# The gallery examples run in this process: they must fit their models to convergence, so a
# ConvergenceWarning raised in one is an error and fails the build (an example that silences
# it does so in plain sight).
warnings.filterwarnings("error", category=ConvergenceWarning)

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

templates_path = ["_templates"]  # autosummary/class.rst: every callable member documented
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"  # `x` renders as code, never as a broken cross-reference
pygments_style = "sphinx"


# -- nitpicky mode ---------------------------------------------------------------------------
nitpicky = True
# The build is offline, so intersphinx cannot download the inventories of the packages we
# build on; references to their objects (``:class:`torch.utils.data.Dataset```,
# ``:class:`sklearn.pipeline.Pipeline```, ...) stay as plain code. They are ignored here, by
# package, and only external packages are: every reference to sdlearn or neural must resolve.
nitpick_ignore_regex = [
    (r"py:.*", rf"{package}(\..*)?")
    for package in ("numpy", "scipy", "sklearn", "torch", "matplotlib", "tqdm")
]

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


def _import_object(name):
    """The object a dotted name denotes (module attribute chain), or None."""
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_reexport(app, env, node, contnode):
    """Resolve a reference to a re-exported name where the object is documented.

    ``neural.LocalLearningClassifier`` and ``neural.local.LocalLearningClassifier`` are the same
    class (the package re-exports it); the API pages document it once, under one name. A
    reference through another name of the same object (for example with ``currentmodule``
    ``neural``) is resolved to the documented one instead of failing.
    """
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    names = [target]
    for context in (node.get("py:class"), node.get("py:module")):
        if context:
            names.insert(0, f"{context}.{target}")
    objects = {name for name in names if _import_object(name) is not None}
    if not objects:
        return None
    wanted = {id(_import_object(name)) for name in objects}
    for documented in list(domain.objects):
        if documented in names:
            continue
        obj = _import_object(documented) if documented.split(".")[-1] == target.split(".")[-1] else None
        if obj is not None and id(obj) in wanted:
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                       documented, node, contnode)
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _resolve_reexport)
    app.connect("source-read", _drop_empty_neural_toctree)
