"""The live engine: price events → re-margin affected accounts → status → margin calls → liquidation."""

from marginkit.engine.events import AdlEvent, EngineEvent, InsuranceFundMove, Liquidation, PriceEvent, StatusChange
from marginkit.engine.liquidation import LiquidationEngine, LiquidationSettings, LiquidationTotals
from marginkit.engine.monitor import Monitor, MonitorSettings, from_nats, from_queue, read_events, replay
from marginkit.engine.state import RiskState

__all__ = [
    "AdlEvent",
    "EngineEvent",
    "InsuranceFundMove",
    "Liquidation",
    "LiquidationEngine",
    "LiquidationSettings",
    "LiquidationTotals",
    "Monitor",
    "MonitorSettings",
    "PriceEvent",
    "RiskState",
    "StatusChange",
    "from_nats",
    "from_queue",
    "read_events",
    "replay",
]
