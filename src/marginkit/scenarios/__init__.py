"""Scenario sets and the one kernel that aggregates instrument P&L per scenario to accounts and reduces it."""

from marginkit.scenarios.kernel import GroupedPositions, ScenarioReduction, group_positions, reduce_scenarios

__all__ = ["GroupedPositions", "ScenarioReduction", "group_positions", "reduce_scenarios"]
