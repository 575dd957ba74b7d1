"""Validation: backtesting margin against realised losses (Kupiec, Christoffersen, traffic light), procyclicality."""

from marginkit.validation.statistics import (
    ChristoffersenResult,
    KupiecResult,
    Procyclicality,
    TrafficLight,
    by_year,
    christoffersen,
    kupiec,
    procyclicality,
    traffic_light,
    zone_thresholds,
)

__all__ = [
    "ChristoffersenResult",
    "KupiecResult",
    "Procyclicality",
    "TrafficLight",
    "by_year",
    "christoffersen",
    "kupiec",
    "procyclicality",
    "traffic_light",
    "zone_thresholds",
]
