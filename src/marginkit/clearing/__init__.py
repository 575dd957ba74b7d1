"""The central counterparty: members, novation, settlement cycles, the default fund and the waterfall."""
