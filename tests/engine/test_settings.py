"""The engine's settings from a profile's `engine` section."""

from __future__ import annotations

import dataclasses

import pytest

from marginkit.engine.settings import engine_settings
from marginkit.errors import InputError
from marginkit.io.profile_file import parse_profile
from marginkit.profiles import shipped_profile


def test_a_profile_without_an_engine_section_runs_on_the_stated_defaults() -> None:
    # Arrange
    profile = shipped_profile("binance-usdm")

    # Act
    settings = engine_settings(profile)

    # Assert: 0.5 % fee, 25 % clips, whole below 1,000 notional, 1 h margin calls, 60 s staleness, no coalescing
    assert (settings.liquidation.fee_rate, settings.liquidation.clip_fraction) == (0.005, 0.25)
    assert settings.liquidation.min_clip_notional == 1000.0
    assert (settings.monitor.margin_call_seconds, settings.monitor.stale_after_seconds) == (3600.0, 60.0)
    assert settings.monitor.coalesce_seconds == 0.0


def test_the_engine_section_of_a_profile_file_sets_them() -> None:
    # Arrange
    data = {"model": "tiered", "name": "x", "version": "1", "source": "s", "parameters": {},
            "engine": {"liquidation_fee_rate": 0.0075, "clip_fraction": 0.2, "min_clip_notional": 100000,
                       "margin_call_seconds": 600, "stale_after_seconds": 5, "coalesce_seconds": 0.01}}

    # Act
    settings = engine_settings(parse_profile(data, "venue.yaml"))

    # Assert
    assert settings.liquidation.fee_rate == 0.0075 and settings.liquidation.clip_fraction == 0.2
    assert settings.liquidation.min_clip_notional == 100000
    assert settings.monitor.margin_call_seconds == 600 and settings.monitor.stale_after_seconds == 5
    assert settings.monitor.coalesce_seconds == 0.01


@pytest.mark.parametrize(("engine", "field"), [
    ({"clip_fraction": 0}, "engine.clip_fraction"),
    ({"clip_fraction": 1.5}, "engine.clip_fraction"),
    ({"liquidation_fee_rate": -0.1}, "engine.liquidation_fee_rate"),
    ({"stale_after_seconds": 0}, "engine.stale_after_seconds"),
    ({"margin_call_seconds": float("nan")}, "engine.margin_call_seconds"),
    ({"clips": 0.2}, "engine.clips"),
])
def test_a_bad_engine_setting_names_its_field(engine: dict[str, float], field: str) -> None:
    # Arrange
    profile = dataclasses.replace(shipped_profile("binance-usdm"), engine=engine, path="venue.yaml")

    # Act / Assert
    with pytest.raises(InputError) as caught:
        engine_settings(profile)
    assert caught.value.field == field and caught.value.file == "venue.yaml"
