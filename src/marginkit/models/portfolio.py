"""The `portfolio` model: portfolio margin on the scenario kernel; the profile's `method` picks the venue's rules.

`deribit-pme`: Deribit Portfolio Margin (models/portfolio_deribit.py); `derive-pmrm`: Derive's Portfolio
Margin Risk Manager 2.1 (models/portfolio_derive.py).
"""

from __future__ import annotations

from marginkit.book import Book
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models import portfolio_deribit, portfolio_derive
from marginkit.models.cross_margining import agreement_of, cross_margined
from marginkit.models.requirements import Requirements

MODEL = "portfolio"
METHODS = ("deribit-pme", "derive-pmrm")


def margin(book: Book, profile: Profile) -> Requirements:
    """Portfolio margin of every portfolio-mode account by the method its profile names (a `cross_margining`
    block: across two clearing houses, models/cross_margining.py)."""
    agreement, inner = agreement_of(profile)
    if agreement is not None:
        return cross_margined(book, profile, agreement, MODEL, lambda part: margin(part, inner))
    method = profile.parameters.get("method")
    if method == "deribit-pme":
        return portfolio_deribit.margin(book, profile)
    if method == "derive-pmrm":
        return portfolio_derive.margin(book, profile)
    raise InputError(f"must be one of {', '.join(METHODS)}", field="parameters.method",
                     file=profile.path or profile.name)
