"""Account state: equity, margin ratio and status from a model's Requirements."""

from marginkit.accounts.state import STATUS_NAMES, AccountState, account_state, apply_credit_tier

__all__ = ["STATUS_NAMES", "AccountState", "account_state", "apply_credit_tier"]
