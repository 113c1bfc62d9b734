"""Prompts from real code, for the workload generator.

* **generation**: MBPP problem texts and HumanEval(-X Python) signatures + docstrings; the
  output budget is the reference solution's length;
* **translation**: HumanEval-X, the same problem's canonical solution in two languages;
  the output budget is the target solution's length;
* **completion** / **summarization**: functions cut from the Python standard library's own
  source (present on every machine): the first half of a function to complete, a function
  without its docstring to summarize.

Data is read where it lies (``../shared/data`` beside the repository, or a given folder),
never copied. A missing data set is named in ``Corpus.notes`` and replaced by a documented
synthetic stand-in (``synthetic``), so a benchmark still runs and says what it used.
"""

from __future__ import annotations

import ast
import gzip
import json
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

#: HumanEval-X languages, named as ``CodingTask.language`` takes them.
LANGUAGES = ("python", "cpp", "java", "js", "go", "rust")
#: Enough standard-library modules for a few thousand functions, parsed in about a second.
STDLIB_FILES = 40
#: Characters per token of code (the sim engine's tokenizer stand-in; ~4 for BPE on code).
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True, slots=True)
class Sample:
    prompt: str
    out_tokens: int  # output length the data implies (reference answer, rest of function)
    language: str = "python"
    target_language: str | None = None


@dataclass
class Corpus:
    completion: list[Sample] = field(default_factory=list)
    generation: list[Sample] = field(default_factory=list)
    summarization: list[Sample] = field(default_factory=list)
    translation: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def tokens(text: str) -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN))


def default_data_root() -> Path:
    """``../shared/data`` relative to the repository root (the folder holding ``cato_mq``):
    this file is ``<repository>/cato_mq/bench/corpus.py``."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _jsonl_gz(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def _humaneval_x(root: Path, c: Corpus) -> None:
    folder = root / "humaneval-x"
    by_lang = {}
    for lang in LANGUAGES:
        path = folder / f"humaneval_{lang}.jsonl.gz"
        if path.is_file():
            by_lang[lang] = _jsonl_gz(path)
    if len(by_lang) < 2:
        c.notes.append(f"HumanEval-X not found under {folder}: translation prompts are synthetic")
        return
    langs = sorted(by_lang)
    for i, rows in enumerate(zip(*(by_lang[lang] for lang in langs), strict=False)):
        src, dst = langs[i % len(langs)], langs[(i + 1 + i // len(langs)) % len(langs)]
        if src == dst:
            dst = langs[(langs.index(src) + 1) % len(langs)]
        s, d = rows[langs.index(src)], rows[langs.index(dst)]
        c.translation.append(Sample(s["prompt"] + s["canonical_solution"], tokens(d["canonical_solution"]), src, dst))
    for row in by_lang.get("python", []):
        c.generation.append(Sample(row["prompt"], tokens(row["canonical_solution"])))
    c.notes.append(f"HumanEval-X ({', '.join(langs)}) from {folder}")


def _mbpp(root: Path, c: Corpus) -> None:
    path = root / "mbpp" / "mbpp.jsonl"
    if not path.is_file():
        c.notes.append(f"MBPP not found at {path}: generation uses HumanEval-X only")
        return
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    c.generation += [Sample(r["text"], tokens(r["code"])) for r in rows]
    c.notes.append(f"MBPP ({len(rows)} problems) from {path}")


def _stdlib(c: Corpus) -> None:
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.glob("*.py") if not p.name.startswith("_"))[:STDLIB_FILES]
    for path in files:
        try:
            text = path.read_text()
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        lines = text.splitlines(keepends=True)  # ast.get_source_segment re-splits the file per call
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or node.end_lineno is None:
                continue
            src = "".join(lines[node.lineno - 1 : node.end_lineno])
            if len(src) < 120:
                continue
            cut = len(src) // 2
            c.completion.append(Sample(src[:cut], tokens(src[cut:])))
            doc = ast.get_docstring(node)
            body = src.replace(doc, "", 1) if doc else src
            c.summarization.append(Sample(body, tokens(doc) if doc else 64))
    c.notes.append(f"Python standard library source ({len(files)} modules under {lib})")


def synthetic(c: Corpus) -> None:
    """Stand-ins for any kind left empty: small generated Python functions; output budgets
    are the kinds' defaults. Documented in the README's Goodput section."""
    filled = []
    for name in ("completion", "generation", "summarization", "translation"):
        samples: list[Sample] = getattr(c, name)
        if samples:
            continue
        filled.append(name)
        for i in range(64):
            body = (f"def f{i}(xs):\n    total = 0\n    for x in xs[:{i + 2}]:\n"
                    f"        total += x * {i}\n    return total\n")
            target = "java" if name == "translation" else None
            samples.append(Sample(body, 32 + (i * 7) % 96, "python", target))
    if filled:
        c.notes.append(f"synthetic prompts for: {', '.join(filled)}")


def load(root: Path | None = None) -> Corpus:
    root = root or default_data_root()
    c = Corpus()
    if not root.is_dir():
        c.notes.append(f"no shared data at {root}")
    else:
        _humaneval_x(root, c)
        _mbpp(root, c)
    _stdlib(c)
    synthetic(c)
    return c
