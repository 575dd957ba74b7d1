"""Margin models: each a pure function of (Book, profile) -> Requirements."""

from __future__ import annotations

from collections.abc import Callable

from marginkit.book import Book
from marginkit.io.profile_file import Profile
from marginkit.models import deribit_standard, portfolio, span, strategy_based, tiered, var
from marginkit.models.requirements import PositionFigures, Requirements

ModelFunction = Callable[[Book, Profile], Requirements]

MODELS: dict[str, ModelFunction] = {
    tiered.MODEL: tiered.margin,
    deribit_standard.MODEL: deribit_standard.margin,
    strategy_based.MODEL: strategy_based.margin,
    portfolio.MODEL: portfolio.margin,
    span.MODEL: span.margin,
    var.MODEL: var.margin,  # VaR/ES from market history: margin(book, profile, history=...) (models/var.py)
}

DEFAULT_PROFILES: dict[str, str] = {
    tiered.MODEL: "binance-usdm",
    deribit_standard.MODEL: "deribit-standard-2022-01-11",
    strategy_based.MODEL: "cboe-finra",
    portfolio.MODEL: "deribit-pm",
    span.MODEL: "span-crypto",
    var.MODEL: "historical-var-99",
}

__all__ = ["DEFAULT_PROFILES", "MODELS", "PositionFigures", "Requirements"]
