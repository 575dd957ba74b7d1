"""marginkit: an open-source derivatives margining engine.

The flow is inputs -> domain -> resolve -> Book -> model -> Requirements -> account state;
see docs/architecture.md.
"""

__version__ = "0.1.0"
