"""Every public class and function of ``neural`` has a valid numpydoc docstring."""

import inspect

import pytest

validate = pytest.importorskip("numpydoc.validate").validate

import neural  # noqa: E402
import neural.backbones  # noqa: E402
import neural.callbacks  # noqa: E402
import neural.datasets  # noqa: E402
import neural.local  # noqa: E402
import neural.memory  # noqa: E402

# extended summary, see-also and examples are welcome but not required
IGNORED = {"ES01", "SA01", "EX01", "GL08", "RT02"}


def public_names():
    names = set()
    for mod in (neural, neural.local, neural.backbones, neural.callbacks, neural.datasets,
                neural.memory):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            names.add(f"{obj.__module__}.{obj.__qualname__}")
            if inspect.isclass(obj):
                names.update(
                    f"{obj.__module__}.{obj.__qualname__}.{m}"
                    for m, f in vars(obj).items()
                    if not m.startswith("_") and callable(f)
                )
    return sorted(names)


@pytest.mark.parametrize("name", public_names())
def test_docstring(name):
    errors = [(code, msg) for code, msg in validate(name)["errors"] if code not in IGNORED]
    assert not errors
