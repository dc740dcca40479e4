"""The jinja2 sandbox of the inner mail's body, with a cap on every text it can build.

jinja2's ``ImmutableSandboxedEnvironment`` stops attribute escapes but not size: ``'%020000000d'
% 0``, ``'x'|center(20000000)`` or ``('x' * 1000000)|wordwrap(1)`` each build megabytes in one
step. Here every operation that can grow a text or a list checks its result against
:data:`MAX_LENGTH`, before doing the work wherever the size can be told from the arguments
(``*``, ``+``, ``%``, ``~``, ``center``/``ljust``/..., ``indent``, ``wordwrap``, ``join``,
``replace``, ``format``, ``str.format``, ``batch``, ``lipsum``) and after it otherwise; the
rendered output is capped as it is produced. Time and memory are bounded by the process the
sandbox runs in (``mail_render``), not here.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

#: Longest text, list or rendered body (characters or items) a template may build.
MAX_LENGTH: Final = 1_000_000
#: Largest integer (in bits) a template may build with ``**``.
MAX_RESULT_BITS: Final = 100_000

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_NUMBER = re.compile(r"\d+")


class TooLong(SecurityError):
    """A template tried to build a text or list longer than :data:`MAX_LENGTH`."""


def estimate(value: Any, budget: int = MAX_LENGTH) -> int:
    """An upper bound of ``len(str(value))``, counted only until it passes ``budget``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool | None):
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 25
    if isinstance(value, Mapping):
        value = [item for pair in value.items() for item in pair]
    if isinstance(value, list | tuple | set | frozenset | range):
        total = 2
        for item in value:
            total += estimate(item, budget) + 2
            if total > budget:
                break
        return total
    return 100  # other objects print as a short repr


def check(value: Any, what: str = "text") -> Any:
    """``value`` when it is within :data:`MAX_LENGTH` (texts and lists only).

    Raises
    ------
    TooLong
        It is not.
    """
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_LENGTH:
        raise TooLong(f"{what} longer than {MAX_LENGTH} characters is not allowed")
    return value


def _limit(size: int, what: str) -> None:
    if size > MAX_LENGTH:
        raise TooLong(f"{what} would be longer than {MAX_LENGTH} characters")


def _argument_sizes(args: Iterable[Any], kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """The largest argument's printed size and the sum of the integer arguments."""
    values = [*args, *kwargs.values()]
    if len(values) == 1 and isinstance(values[0], Mapping | tuple):
        values = list(values[0].values() if isinstance(values[0], Mapping) else values[0])
    widest = max((estimate(v) for v in values), default=0)
    integers = sum(abs(v) for v in values if isinstance(v, int) and v.bit_length() < 64)
    return widest, integers


def printf_size(template: str, args: Any) -> int:
    """An upper bound of ``len(template % args)``."""
    specs = _PRINTF_SPEC.findall(template)
    widest, integers = _argument_sizes((args,), {})
    widths = sum(int(n) for spec in specs for n in spec if n.isdigit())
    stars = any("*" in spec for spec in specs)
    return len(template) + len(specs) * widest + widths + (integers if stars else 0)


def format_size(template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> int:
    """An upper bound of ``len(template.format(*args, **kwargs))``."""
    fields = list(string.Formatter().parse(template))
    widest, integers = _argument_sizes(args, kwargs)
    widths = sum(int(n) for *_, spec, _ in fields if spec for n in _NUMBER.findall(spec))
    nested = any(spec and "{" in spec for *_, spec, _ in fields)
    return len(template) + len(fields) * widest + widths + (integers if nested else 0)


def _padded(value: Any, width: Any = 0, *_: Any) -> int:
    return max(estimate(value), width if isinstance(width, int) else 0)


def _indent(value: Any, width: Any = 4, *_: Any) -> int:
    text = str(value)
    step = len(width) if isinstance(width, str) else int(width)
    return len(text) + (text.count("\n") + 1) * step


def _wrapped(value: Any, width: Any = 79, _long: Any = True, wrap: Any = None, *_: Any) -> int:
    text = str(value)
    return len(text) + (len(text) // max(int(width), 1) + 1) * len(wrap or "\n")


def _joined(value: Any, separator: Any = "", *_: Any) -> int:
    items = list(value) if isinstance(value, Iterable) else []
    return sum(estimate(item) for item in items) + len(str(separator)) * len(items)


def _replaced(value: Any, old: Any, new: Any, count: Any = None, *_: Any) -> int:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _expanded(value: Any, tabsize: Any = 8, *_: Any) -> int:
    text = str(value)
    return len(text) + text.count("\t") * (tabsize if isinstance(tabsize, int) else 8)


def _filled(value: Any, count: Any, fill_with: Any = None, *_: Any) -> int:
    return count if fill_with is not None and isinstance(count, int) else 0


def _widest_value(table: Any) -> int:
    values = table.values() if isinstance(table, Mapping) else ()
    return max(map(estimate, values), default=1)


def _lorem(n: Any = 5, html: Any = True, low: Any = 20, high: Any = 100, *_: Any) -> int:
    return int(n) * int(high) * 16


#: Size estimates by filter name, called with the filter's own arguments (value first).
FILTER_SIZES: Final[dict[str, Callable[..., int]]] = {
    "center": _padded,
    "indent": _indent,
    "wordwrap": _wrapped,
    "join": _joined,
    "replace": _replaced,
    "format": lambda value, *args, **kwargs: printf_size(str(value), kwargs or args),
    "batch": _filled,
    "slice": lambda value, slices, *_: slices if isinstance(slices, int) else 0,
}

#: Size estimates of the string methods that can grow a text.
METHOD_SIZES: Final[dict[str, Callable[..., int]]] = {
    "center": _padded,
    "ljust": _padded,
    "rjust": _padded,
    "zfill": _padded,
    "expandtabs": _expanded,
    "replace": _replaced,
    "join": lambda separator, items, *_: _joined(items, separator),
    "format": lambda template, *args, **kwargs: format_size(template, args, kwargs),
    "format_map": lambda template, mapping, *_: format_size(template, (), mapping),
    "translate": lambda text, table, *_: len(text) * _widest_value(table),
}


def _capped_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a jinja2 filter) with its size estimate before and the cap after."""
    offset = 1 if getattr(function, "jinja_pass_arg", None) else 0  # context/environment first
    size = FILTER_SIZES.get(name)

    @functools.wraps(function)
    def capped(*args: Any, **kwargs: Any) -> Any:
        if size is not None:
            _limit(size(*args[offset:], **kwargs), f"the result of |{name}")
        return check(function(*args, **kwargs), f"the result of |{name}")

    return capped


def _capped_concat(parts: Iterable[str]) -> str:
    """``"".join(parts)``, stopping as soon as the text passes :data:`MAX_LENGTH`."""
    collected: list[str] = []
    total = 0
    for part in parts:
        total += len(part)
        _limit(total, "the rendered text")
        collected.append(part)
    return "".join(collected)


class _CappedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` so that its result goes through :func:`check`."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.check_length(")
        super().visit_Concat(node, frame)
        self.write(")")


class CappedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with :data:`MAX_LENGTH` on every text, list and output.

    Constant folding is off, so that nothing runs at compile time, before the checks.
    """

    code_generator_class = _CappedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_capped_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(
            optimized=False,
            finalize=self._finalize,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            **options,
        )
        self.filters = {name: _capped_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = self._lipsum

    @staticmethod
    def check_length(value: Any) -> Any:
        """The cap on ``a ~ b`` (called by the compiled template)."""
        return check(value, "joined text")

    @staticmethod
    def _finalize(value: Any) -> Any:
        _limit(estimate(value), "an output")
        return value

    @staticmethod
    def _lipsum(*args: Any, **kwargs: Any) -> str:
        _limit(_lorem(*args, **kwargs), "lipsum()")
        return generate_lorem_ipsum(*args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            return _power(left, right)
        if operator == "%" and isinstance(left, str):
            _limit(printf_size(left, right), "%-formatting")
        elif operator == "*":
            sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
            counts = [abs(v) for v in (left, right) if isinstance(v, int)]
            if sizes and counts:
                _limit(sizes[0] * counts[0], "repeating text")
        elif operator == "+" and all(isinstance(v, str | list | tuple) for v in (left, right)):
            _limit(len(left) + len(right), "adding texts")
        return check(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by jinja2
        owner = getattr(method, "__self__", None)
        size = METHOD_SIZES.get(getattr(method, "__name__", ""))
        if isinstance(owner, str) and size is not None:
            _limit(size(owner, *args, **kwargs), f"str.{method.__name__}()")
        return check(super().call(__context, __obj, *args, **kwargs))


def _power(left: Any, right: Any) -> Any:
    numbers = all(isinstance(v, int | float) for v in (left, right))
    bits = left.bit_length() if isinstance(left, int) else 64
    if not numbers or abs(right) > 100 or bits * abs(right) > MAX_RESULT_BITS:
        raise SecurityError("powers this large are not allowed in mail templates")
    return left**right


def render(body: str, substitutions: Mapping[str, Any]) -> str:
    """``body`` rendered in the capped sandbox.

    Raises
    ------
    jinja2.TemplateError
        A syntax error, an undefined variable, or a sandbox violation (``SecurityError``,
        including :class:`TooLong`).
    """
    return CappedSandbox().from_string(body).render(**substitutions)
