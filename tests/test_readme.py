"""The README's usage example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_keeps_the_two_setup_commands():
    text = README.read_text()
    for marker in ("<!-- demo-command -->", "<!-- test-command -->"):
        assert marker in text
    assert "python -m sdlearn" in text and "pytest" in text
