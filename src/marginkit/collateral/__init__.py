"""Valuation of collateral balances into an account's margin currency: haircut schedules, chains, credit tiers."""

from marginkit.collateral.schedule import (
    CollateralSchedule,
    load_collateral_schedule,
    parse_collateral_profile,
    shipped_collateral_profiles,
)
from marginkit.collateral.valuation import (
    CollateralValuation,
    apply_collateral,
    collateral_value,
    collateral_value_initial,
    market_value_of_collateral,
    position_value_in,
    value_collateral,
)

__all__ = [
    "CollateralSchedule",
    "CollateralValuation",
    "apply_collateral",
    "collateral_value",
    "collateral_value_initial",
    "load_collateral_schedule",
    "market_value_of_collateral",
    "parse_collateral_profile",
    "position_value_in",
    "shipped_collateral_profiles",
    "value_collateral",
]
