"""Plugin versions as the plugin daemon writes them, compared numerically.

The daemon accepts ``^\\d{1,4}(\\.\\d{1,4}){1,3}(-\\w{1,16})?$`` (``1.2``, ``0.1.3``,
``2.0.0.1``, ``1.0.0-beta1``). Missing parts count as 0 and a pre-release sorts below its
release. Dify compares with ``!=`` (``latest``) and on ``str.split(".")`` (``fix_only``), so a
lower marketplace version "upgrades" (a downgrade) and a pre-release suffix raises; here a
strategy only ever moves to a greater version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from worker.domain.models.enums import AutoUpgradeStrategySetting

_PATTERN = re.compile(r"^(\d{1,4}(?:\.\d{1,4}){1,3})(?:-(\w{1,16}))?$")


class InvalidVersion(ValueError):
    """The text is not a plugin version as the daemon accepts it."""


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed plugin version."""

    #: Four numeric parts, missing ones 0.
    parts: tuple[int, int, int, int]
    #: Pre-release suffix (``beta1``), empty for a release.
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``text``.

        Raises
        ------
        InvalidVersion
            It does not match the daemon's pattern.
        """
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidVersion(f"{text!r} is not a plugin version")
        numbers = [int(part) for part in match.group(1).split(".")]
        padded = (*numbers, 0, 0, 0)[:4]
        return cls(parts=(padded[0], padded[1], padded[2], padded[3]), pre=match.group(2) or "")

    def _key(self) -> tuple[tuple[int, int, int, int], bool, str]:
        return self.parts, not self.pre, self.pre

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


def upgrade_reason(
    setting: AutoUpgradeStrategySetting, current: str, latest: str
) -> tuple[bool, str]:
    """Whether ``setting`` moves a plugin from ``current`` to ``latest``, and why (not).

    ``latest`` moves to any greater version; ``fix_only`` to a greater version with the same
    major and minor parts. Never to a lower or equal one, nor from or to an unparseable one.
    """
    try:
        have, offered = Version.parse(current), Version.parse(latest)
    except InvalidVersion as exc:
        return False, str(exc)
    if setting is AutoUpgradeStrategySetting.DISABLED:
        return False, "auto-upgrade is disabled"
    if offered == have:
        return False, "already at the marketplace's latest version"
    if offered < have:
        return False, f"the marketplace's latest version {latest} is lower than {current}"
    if setting is AutoUpgradeStrategySetting.FIX_ONLY and offered.parts[:2] != have.parts[:2]:
        return False, f"fix_only: {latest} is not a patch release of {current}"
    return True, f"{setting.value}: {current} -> {latest}"
