"""Batch margin, comparisons and backtests on a Dask cluster, the same bits as one process, and the live engine
partitioned by account over NATS JetStream (docs/cluster.md). Dask is imported only when a cluster is opened."""
