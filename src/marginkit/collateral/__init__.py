"""Valuation of collateral balances into an account's margin currency at index prices."""

from marginkit.collateral.valuation import collateral_value, position_value_in

__all__ = ["collateral_value", "position_value_in"]
