"""Scenario sets and the one kernel that aggregates instrument P&L per scenario to accounts and reduces it."""

from marginkit.scenarios.incremental import IncrementalIndex, ScenarioState
from marginkit.scenarios.kernel import (
    GroupedPositions,
    ScenarioMatrix,
    ScenarioReduction,
    group_positions,
    reduce_scenarios,
    scenario_pnl,
)
from marginkit.scenarios.tail import TailStatistics, tail_statistics

__all__ = [
    "GroupedPositions",
    "IncrementalIndex",
    "ScenarioMatrix",
    "ScenarioReduction",
    "ScenarioState",
    "TailStatistics",
    "group_positions",
    "reduce_scenarios",
    "scenario_pnl",
    "tail_statistics",
]
