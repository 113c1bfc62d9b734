"""Lexical retrieval over the files a request carries: BM25 on code-aware tokens."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

#: Lines per chunk: about one small function, the unit a completion usually needs.
CHUNK_LINES = 12
#: Snippets returned; more would crowd the prompt of a small model.
TOP_K = 3
#: Standard BM25 constants (Robertson & Zaragoza); code chunks are short, so they are fine.
K1, B = 1.2, 0.75

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def tokens(text: str) -> list[str]:
    """Identifiers split on snake_case and camelCase, lower-cased."""
    out: list[str] = []
    for ident in _IDENT.findall(text):
        for part in _CAMEL.sub("_", ident).split("_"):
            if len(part) > 1:
                out.append(part.lower())
    return out


@dataclass(frozen=True, slots=True)
class Snippet:
    path: str
    start_line: int
    text: str
    score: float


def chunks(path: str, text: str) -> list[tuple[str, int, str]]:
    lines = text.splitlines()
    return [
        (path, i + 1, "\n".join(lines[i : i + CHUNK_LINES])) for i in range(0, len(lines), CHUNK_LINES)
    ]


def search(query: str, files: Sequence[tuple[str, str]], k: int = TOP_K) -> list[Snippet]:
    """Best ``k`` chunks of ``files`` (path, text) for ``query`` by BM25, best first."""
    docs = [c for path, text in files for c in chunks(path, text)]
    if not docs:
        return []
    terms = [Counter(tokens(d[2])) for d in docs]
    avg_len = sum(sum(t.values()) for t in terms) / len(docs) or 1.0
    df: Counter[str] = Counter()
    for t in terms:
        df.update(t.keys())
    scored = []
    for (path, line, text), tf in zip(docs, terms, strict=True):
        length = sum(tf.values())
        score = 0.0
        for q in set(tokens(query)):
            if q not in tf:
                continue
            idf = math.log(1 + (len(docs) - df[q] + 0.5) / (df[q] + 0.5))
            score += idf * tf[q] * (K1 + 1) / (tf[q] + K1 * (1 - B + B * length / avg_len))
        if score > 0:
            scored.append(Snippet(path, line, text, score))
    scored.sort(key=lambda s: -s.score)
    return scored[:k]
