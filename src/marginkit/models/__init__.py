"""Margin models: each a pure function of (Book, profile) -> Requirements."""

from __future__ import annotations

from collections.abc import Callable

from marginkit.book import Book
from marginkit.io.profile_file import Profile
from marginkit.models import tiered
from marginkit.models.requirements import PositionFigures, Requirements

ModelFunction = Callable[[Book, Profile], Requirements]

MODELS: dict[str, ModelFunction] = {
    tiered.MODEL: tiered.margin,
}

DEFAULT_PROFILES: dict[str, str] = {
    tiered.MODEL: "binance-usdm",
}

__all__ = ["DEFAULT_PROFILES", "MODELS", "PositionFigures", "Requirements"]
