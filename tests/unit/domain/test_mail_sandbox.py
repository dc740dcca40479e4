"""The capped sandbox: every way of growing a text stops at MAX_LENGTH, before the work."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from worker.domain.mail_sandbox import MAX_LENGTH, TooLong, render


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {{ name }}", "Hi &lt;b&gt;"),
        ("{{ '%05.1f|%s' % (3.14159, name) }}", "003.1|&lt;b&gt;"),
        ("{{ '%s and %s'|format('a', 'b') }}", "a and b"),
        ("{{ '{:>4}'.format(7) }}", "   7"),
        ("{{ 'ab'|center(6) }}|{{ 'ab'.rjust(4) }}", "  ab  |  ab"),
        ("{{ ['a', 'b']|join(', ') }}", "a, b"),
        ("{{ 'x' ~ 'y' ~ 1 }}", "xy1"),
        ("{{ ('ab' * 3)|replace('b', 'c') }}", "acacac"),
        ("{{ 'one two three'|wordwrap(5) }}", "one\ntwo\nthree"),
        ("{{ 2 ** 10 }} {{ [1] + [2] }}", "1024 [1, 2]"),
    ],
)
def test_ordinary_templates_render(body: str, expected: str) -> None:
    assert render(body, {"name": "<b>"}) == expected


@pytest.mark.parametrize(
    "body",
    [
        "{{ '%020000000d' % 0 }}",
        "{{ '%010000000000d' % 0 }}",
        "{{ '%.20000000f' % 1.5 }}",
        "{{ '%*d' % (20000000, 0) }}",
        "{{ '%s%s' % ('x' * 600000, 'y') }}",
        "{{ '%(a)s%(a)s' % {'a': 'x' * 600000} }}",
        "{{ '%020000000d'|format(0) }}",
        "{{ 'x'|center(20000000) }}",
        "{{ 'x'.center(20000000) }}",
        "{{ 'x'.ljust(2000000) }}",
        "{{ 'x'.zfill(2000000) }}",
        "{{ ('a\tb' * 100000).expandtabs(100) }}",
        "{{ ('x' * 1000000)|wordwrap(1) }}",
        "{{ ('x\n' * 1000)|indent(2000, true) }}",
        "{{ (['x' * 1000000] * 1000)|join }}",
        "{{ ','.join(['x' * 1000000] * 2) }}",
        "{{ ('x' * 1000000)|replace('x', 'yy') }}",
        "{{ ('x' * 1000000).replace('x', 'yy') }}",
        "{{ '{:020000000}'.format(0) }}",
        "{{ '{:{}}'.format(0, 20000000) }}",
        "{{ '{0}{0}'.format('x' * 600000) }}",
        "{{ 'x' * 300000000 }}",
        "{{ ('x' * 1000000) + 'y' }}",
        "{{ ('x' * 1000000) ~ 'y' }}",
        "{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
        "{% set s %}{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}{% endset %}",
        "{{ ['x' * 1000000] * 2 }}",
        "{{ lipsum(100000) }}",
        "{{ 'x'|batch(100000000, 'y')|list }}",
        "{{ ('x' * 1000000)|upper ~ '' }}{{ ('x' * 1000000)|upper }}",
    ],
)
def test_every_way_of_growing_a_text_is_capped(body: str) -> None:
    with pytest.raises(TooLong, match=f"longer than {MAX_LENGTH} characters"):
        render(body, {})


@pytest.mark.parametrize(
    "body", ["{{ ''.__class__.__mro__ }}", "{{ (7 ** 30000000) % 10 }}", "{{ [].append(1) }}"]
)
def test_the_sandbox_still_refuses_escapes_and_huge_powers(body: str) -> None:
    with pytest.raises(SecurityError):
        render(body, {})


def test_a_text_of_exactly_the_cap_is_allowed() -> None:
    assert len(render("{{ 'x' * n }}", {"n": MAX_LENGTH})) == MAX_LENGTH
