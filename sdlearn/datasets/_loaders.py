"""Loaders for the user's own data: texts with labels and covariates (CSV), and folders of
images with one subfolder per class. No network, no pandas."""

import csv
import os

import numpy as np
from sklearn.utils import Bunch

def load_text_csv(path, *, text_column="text", target_column="label", aux_columns=None, annotation_columns=None,
                  delimiter=","):
    """Load a CSV file of documents, labels, covariates and annotations (no network, no pandas).

    The one CSV reader of the project (``neural.text.load_text_csv`` builds on it). The file
    needs a header row. Columns:

    * ``text_column``: the document text (quote it if it holds the delimiter or newlines);
    * ``target_column``: the label (any strings; integers are converted). ``None``, or a column
      missing from a file read with ``annotation_columns``, gives ``target=None`` (the labels
      then come from the annotations);
    * ``annotation_columns``: one annotator's label each, returned as strings (``None`` for an
      empty cell);
    * ``aux_columns``: covariates. Numeric columns are used as they are (empty cells become
      0 and are counted in ``aux_missing``); a non-numeric column is one-hot encoded, one
      column ``name=value`` per value in order of first appearance. ``None`` takes every
      column other than the text, the label and the annotations; ``[]`` takes none.

    Parameters
    ----------
    path : str or path-like
        The CSV file (UTF-8).
    text_column : str, default='text'
        Column of the texts.
    target_column : str or None, default='label'
        Column of the labels.
    aux_columns : list of str or None, default=None
        Covariate columns (see above).
    annotation_columns : list of str or None, default=None
        Columns of per-annotator labels.
    delimiter : str, default=','
        Field delimiter.

    Returns
    -------
    data : Bunch
        ``texts`` list of strings; ``target`` (n,) array of labels or ``None``; ``aux``
        (n, q) float array or ``None`` when there are no covariates; ``aux_names`` the q column
        names (one-hot columns as ``name=value``); ``aux_missing`` the number of empty numeric
        cells replaced by 0; ``annotations`` (n lists of strings or ``None``) or ``None``;
        ``columns`` the header.

    Raises
    ------
    ValueError
        If a named column is missing or the file holds no records.

    See Also
    --------
    make_topic_corpus : A synthetic corpus with the same fields.

    Examples
    --------
    >>> import os, tempfile
    >>> from sdlearn.datasets import load_text_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "docs.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("text,label,has_logo,industry\\n"
    ...                 "great pay work from home,1,0,sales\\n"
    ...                 "engineer role in a team,0,1,tech\\n")
    >>> d = load_text_csv(path)
    >>> d.texts[0], d.target.tolist(), d.aux_names
    ('great pay work from home', [1, 0], ['has_logo', 'industry=sales', 'industry=tech'])
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    annotation_columns = list(annotation_columns or [])
    if target_column is not None and target_column not in header and annotation_columns:
        target_column = None  # labels from the annotations
    named = [text_column] + ([] if target_column is None else [target_column]) + annotation_columns
    missing = [c for c in named if c not in header]
    if missing:
        raise ValueError(f"{str(path)!r} has no column(s) {missing}; its columns are {header}.")
    if aux_columns is None:
        aux_columns = [c for c in header if c not in named]
    missing = [c for c in aux_columns if c not in header]
    if missing:
        raise ValueError(f"aux_columns {missing} are not in the CSV header {header}.")
    if not rows:
        raise ValueError(f"{str(path)!r} holds no records.")
    texts = [row[text_column] or "" for row in rows]
    target = None if target_column is None else _labels([row[target_column] for row in rows])
    annotations = None
    if annotation_columns:
        annotations = [[(row[c] or "").strip() or None for c in annotation_columns] for row in rows]
    aux, names, n_missing = _covariates(rows, aux_columns)
    return Bunch(texts=texts, target=target, aux=aux, aux_names=names, aux_missing=n_missing,
                 annotations=annotations, columns=header)


def _labels(values):
    """Integer labels when every value is an integer, the strings otherwise."""
    try:
        return np.asarray([int(v) for v in values])
    except (TypeError, ValueError):
        return np.asarray(values)


def _covariates(rows, columns):
    """Numeric columns as they are (empty cells 0, counted), others one-hot encoded."""
    encoded, names, n_missing = [], [], 0
    for name in columns:
        values = [(row[name] or "").strip() for row in rows]
        try:
            numeric = [float(v) if v != "" else np.nan for v in values]
        except ValueError:
            for level in dict.fromkeys(values):
                encoded.append(np.asarray([v == level for v in values], dtype=float))
                names.append(f"{name}={level}")
            continue
        column = np.asarray(numeric, dtype=float)
        n_missing += int(np.isnan(column).sum())
        encoded.append(np.nan_to_num(column, nan=0.0))
        names.append(name)
    return (np.column_stack(encoded) if encoded else None), names, n_missing


_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm")


def _read_grayscale(path):
    """An image file as a 2-D float array in [0, 1] (PIL if installed, else matplotlib)."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(path) as im:
            array = np.asarray(im.convert("L"), dtype=float) / 255.0
        return array
    import matplotlib.image as mpimg

    array = np.asarray(mpimg.imread(path), dtype=float)
    if array.max() > 1.0:
        array = array / 255.0
    if array.ndim == 3:
        rgb = array[..., :3]
        array = rgb @ np.array([0.299, 0.587, 0.114]) if rgb.shape[-1] == 3 else rgb[..., 0]
    return array


def _resize(image, size):
    """Resize a 2-D array to ``size`` = (height, width) by bilinear interpolation."""
    if image.shape == tuple(size):
        return image
    from scipy.ndimage import zoom as nd_zoom

    factors = (size[0] / image.shape[0], size[1] / image.shape[1])
    out = nd_zoom(image, factors, order=1, grid_mode=True, mode="nearest")
    # zoom rounds the output shape; crop or pad to the exact size
    out = out[: size[0], : size[1]]
    if out.shape != tuple(size):
        out = np.pad(out, ((0, size[0] - out.shape[0]), (0, size[1] - out.shape[1])), mode="edge")
    return np.clip(out, 0.0, 1.0)


def load_image_folder(path, *, size=(32, 32), extensions=_IMAGE_EXTENSIONS):
    """Load grayscale images from a folder with one subfolder per class (no network).

    The layout is ``path/<class name>/<image file>``, e.g. ``chest_xray/train/NORMAL/*.jpeg``
    and ``chest_xray/train/PNEUMONIA/*.jpeg``. Every image is converted to grayscale in
    [0, 1] and resized to ``size`` (bilinear). Files are read with Pillow when it is installed,
    otherwise with :func:`matplotlib.image.imread` (which reads PNG natively).

    Parameters
    ----------
    path : str or path-like
        Folder holding one subfolder per class (sorted by name; the i-th is label i).
    size : tuple of two int, default=(32, 32)
        Output image shape ``(height, width)``.
    extensions : tuple of str, default=('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.pgm')
        File name endings (case-insensitive) that count as images; other files are skipped.

    Returns
    -------
    data : Bunch
        ``data`` (n, height * width) flattened images; ``images`` (n, height, width);
        ``target`` (n,) integer labels; ``target_names`` the class folder names;
        ``filenames`` the n file paths; ``image_shape``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from sdlearn.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, name))
    ...     plt.imsave(os.path.join(root, name, "a.png"), np.random.rand(20, 30), cmap="gray")
    >>> d = load_image_folder(root, size=(8, 8))
    >>> d.data.shape, d.target.tolist(), d.target_names
    ((2, 64), [0, 1], ['cat', 'dog'])
    """
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) of positive ints, got {size!r}.")
    classes = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{path!r} has no class subfolders (expected path/<class>/<images>).")
    images, target, filenames = [], [], []
    lowered = tuple(e.lower() for e in extensions)
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        for file in sorted(os.listdir(folder)):
            if not file.lower().endswith(lowered):
                continue
            full = os.path.join(folder, file)
            images.append(_resize(_read_grayscale(full), size))
            target.append(label)
            filenames.append(full)
    if not images:
        raise ValueError(f"no image files ({', '.join(extensions)}) under {path!r}.")
    images = np.stack(images)
    return Bunch(
        data=images.reshape(len(images), -1), images=images, target=np.asarray(target),
        target_names=classes, filenames=filenames, image_shape=tuple(size),
    )
