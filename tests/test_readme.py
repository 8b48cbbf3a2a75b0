"""Every ``python`` block of README.md runs, in order, in one namespace, on the bundled sample.

A block right after ``<!-- readme-test: skip REASON -->`` is skipped (it needs a Dask cluster or
the network); every other block must run as written, so the README cannot drift from the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(
    r"(?:<!-- readme-test: skip (?P<skip>[^>]*?) -->\n)?^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class Snippet:
    line: int
    code: str
    skip: str | None


def snippets(text: str) -> list[Snippet]:
    return [
        Snippet(text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("skip"))
        for m in _BLOCK.finditer(text)
    ]


def test_the_extractor_finds_blocks_and_markers() -> None:
    text = "a\n```python\nx = 1\n```\n<!-- readme-test: skip needs dask -->\n```python\ny = 2\n```\n```bash\nls\n```\n"
    assert snippets(text) == [Snippet(3, "x = 1\n", None), Snippet(7, "y = 2\n", "needs dask")]


def test_every_readme_python_snippet_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # a snippet that writes a file writes it here
    text = README.read_text(encoding="utf-8")
    found = snippets(text)
    assert len(found) == text.count("```python")  # no block escapes the extractor
    assert len([s for s in found if s.skip is None]) >= 3
    namespace: dict[str, object] = {"__name__": "readme"}
    for snippet in found:
        if snippet.skip is not None:
            continue
        try:
            exec(compile(snippet.code, f"README.md:{snippet.line}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README.md snippet at line {snippet.line} fails: {type(exc).__name__}: {exc}")
    out = capsys.readouterr().out
    assert "3 accounts: 3 rebalanced, 0 failed" in out  # the batch snippet's summary
    assert namespace["result"].trades  # type: ignore[attr-defined]
