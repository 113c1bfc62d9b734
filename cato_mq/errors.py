"""How cato-mq words a refused input for people: one line per problem, no library links.

pydantic's own message spans several lines per error and ends each with a documentation
link; a user who mistyped a field wants to read ``kind: Input should be 'completion', ...``.
The CLI, the settings loaders and the pools file all word their validation errors here,
so each problem reads the same wherever it is caught.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

#: What pydantic puts before the message of a ``ValueError`` raised in a validator.
_VALUE_ERROR = "Value error, "


def dotted(loc: tuple[int | str, ...]) -> str:
    """A field's place in the input: ``context.0.path``."""
    return ".".join(str(part) for part in loc)


def problems(exc: ValidationError, name: Callable[[tuple[int | str, ...]], str] = dotted) -> list[str]:
    """One ``field: message`` line per error; ``name`` says what the user calls the field
    (an environment variable, a JSON path)."""
    out = []
    for err in exc.errors(include_url=False):
        label = name(err["loc"]) if err["loc"] else ""
        message = str(err["msg"]).removeprefix(_VALUE_ERROR)
        out.append(f"{label}: {message}" if label else message)
    return out


def one_line(exc: ValidationError, name: Callable[[tuple[int | str, ...]], str] = dotted) -> str:
    """The problems joined on one line, for an exception message that must stay one line."""
    return "; ".join(problems(exc, name))


def env_name(prefix: str) -> Callable[[tuple[int | str, ...]], str]:
    """Names a settings field by its environment variable: ``visibility_timeout_s`` is
    ``CATO_VISIBILITY_TIMEOUT_S``."""
    return lambda loc: f"{prefix}{str(loc[0]).upper()}" + "".join(f".{p}" for p in loc[1:])
