"""The overview's throughput chart, drawn as SVG on the server (no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 150
_PAD_LEFT = 44
_PAD_BOTTOM = 18


@dataclass(frozen=True, kw_only=True)
class Minute:
    """Jobs that ended in one minute."""

    at: datetime
    succeeded: int
    failed: int


def throughput_svg(minutes: Sequence[Minute]) -> Markup:
    """Stacked bars per minute (succeeded, then failed on top), with the peak on the y axis.
    Each bar carries ``data-minute``, ``data-succeeded`` and ``data-failed`` (and a tooltip)."""
    peak = max((m.succeeded + m.failed for m in minutes), default=0)
    scale = (HEIGHT - _PAD_BOTTOM - 4) / peak if peak else 0.0
    slot = (WIDTH - _PAD_LEFT) / max(len(minutes), 1)
    bars = []
    for index, minute in enumerate(minutes):
        x = _PAD_LEFT + index * slot
        ok = minute.succeeded * scale
        bad = minute.failed * scale
        base = HEIGHT - _PAD_BOTTOM
        label = f"{minute.at:%H:%M} UTC: {minute.succeeded} succeeded, {minute.failed} failed"
        bars.append(
            f'<g class="bar" data-minute="{minute.at:%H:%M}" data-succeeded="{minute.succeeded}"'
            f' data-failed="{minute.failed}"><title>{escape(label)}</title>'
            f'<rect class="ok" x="{x:.1f}" y="{base - ok:.1f}" width="{max(slot - 1, 1):.1f}"'
            f' height="{ok:.1f}"/>'
            f'<rect class="bad" x="{x:.1f}" y="{base - ok - bad:.1f}"'
            f' width="{max(slot - 1, 1):.1f}" height="{bad:.1f}"/></g>'
        )
    first = f"{minutes[0].at:%H:%M}" if minutes else ""
    last = f"{minutes[-1].at:%H:%M}" if minutes else ""
    axis = (
        f'<text x="{_PAD_LEFT - 4}" y="12" text-anchor="end">{peak}</text>'
        f'<text x="{_PAD_LEFT - 4}" y="{HEIGHT - _PAD_BOTTOM}" text-anchor="end">0</text>'
        f'<text x="{_PAD_LEFT}" y="{HEIGHT - 4}">{first}</text>'
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">{last} UTC</text>'
        f'<line x1="{_PAD_LEFT}" y1="{HEIGHT - _PAD_BOTTOM}" x2="{WIDTH}"'
        f' y2="{HEIGHT - _PAD_BOTTOM}"/>'
    )
    return Markup(
        f'<svg class="chart" id="throughput" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="jobs ended per minute over the last hour" data-peak="{peak}">'
        f"{axis}{''.join(bars)}</svg>"
    )
