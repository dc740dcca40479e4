"""Plugin versions compared numerically: fix_only stays on its minor version, nothing goes down."""

from __future__ import annotations

import pytest

from worker.domain.models import AutoUpgradeStrategySetting
from worker.domain.plugins.versions import InvalidVersion, Version, upgrade_reason

FIX_ONLY = AutoUpgradeStrategySetting.FIX_ONLY
LATEST = AutoUpgradeStrategySetting.LATEST


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("0.1.2", "0.1.3"),
        ("0.1.9", "0.1.10"),  # numeric, not text: "0.1.10" < "0.1.9" as strings
        ("1.2", "1.2.1"),
        ("1.0.0-beta1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-beta"),
        ("2.0.0.1", "2.0.0.2"),
    ],
)
def test_versions_compare_numerically(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)


def test_missing_parts_count_as_zero() -> None:
    assert Version.parse("1.2") == Version.parse("1.2.0.0")


@pytest.mark.parametrize("text", ["1", "v1.2.3", "1.2.3.4.5", "12345.1", "1.2-", ""])
def test_versions_outside_the_daemons_pattern_are_refused(text: str) -> None:
    with pytest.raises(InvalidVersion):
        Version.parse(text)


@pytest.mark.parametrize(
    ("setting", "current", "latest", "upgrades"),
    [
        (FIX_ONLY, "0.1.2", "0.1.3", True),
        (FIX_ONLY, "0.1.2", "0.2.0", False),
        (FIX_ONLY, "0.1.3", "0.1.2", False),
        (FIX_ONLY, "0.1.2-rc1", "0.1.2", True),
        (LATEST, "0.1.2", "0.2.0", True),
        (LATEST, "1.2.0", "1.1.9", False),  # Dify's != would downgrade
        (LATEST, "0.1.10", "0.1.9", False),
        (LATEST, "1.0.0", "1.0.0", False),
        (LATEST, "1.0.0", "not-a-version", False),
        (AutoUpgradeStrategySetting.DISABLED, "0.1.2", "0.1.3", False),
    ],
)
def test_strategies_only_move_to_a_greater_version(
    setting: AutoUpgradeStrategySetting, current: str, latest: str, upgrades: bool
) -> None:
    allowed, reason = upgrade_reason(setting, current, latest)

    assert allowed is upgrades
    assert reason
