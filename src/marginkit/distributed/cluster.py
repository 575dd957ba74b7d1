"""`--cluster local[:N] | tcp://HOST:PORT`: which Dask cluster a batch runs on, and a client connected to it.

`local` starts a Dask `LocalCluster` of worker processes on this machine (one per core, or N), each with one
thread (marginkit's kernels are single-threaded NumPy and numba; parallelism is across processes), its dashboard
on a free port (never a clash on 8787) and quiet logs, torn down when the run ends. `tcp://HOST:PORT` connects to
a running scheduler (`dask scheduler`, `dask worker tcp://HOST:PORT`) and leaves it running. Reference: Dask
distributed, "LocalCluster" and "Client".
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marginkit.errors import InputError

if TYPE_CHECKING:
    from distributed import Client, Future

FIELD = "--cluster"
MAXIMUM_LOCAL_WORKERS = 512
CONNECT_TIMEOUT_SECONDS = 10.0
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


class ClusterUnavailable(InputError):
    """The cluster of --cluster cannot be used (no scheduler at the address, no worker): bad input, no file."""

    def in_file(self, file: str) -> InputError:
        """Unchanged: the cluster is not in any file."""
        return self


@dataclass(frozen=True)
class ClusterSpec:
    """A local cluster of `workers` processes (None: one per core), or the scheduler at `address`."""

    workers: int | None = None
    address: str | None = None

    @property
    def is_local(self) -> bool:
        return self.address is None

    def describe(self) -> str:
        """The spec as given on the command line."""
        if self.address is not None:
            return self.address
        return "local" if self.workers is None else f"local:{self.workers}"


def parse_cluster(value: str) -> ClusterSpec:
    """Parse `local`, `local:N` (1 ≤ N ≤ 512) or `tcp://HOST:PORT` / `tls://HOST:PORT`; InputError names --cluster."""
    text = value.strip()
    if text == "local":
        return ClusterSpec()
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or not 1 <= int(count) <= MAXIMUM_LOCAL_WORKERS:
            raise InputError(f"local:N needs a whole number of workers from 1 to {MAXIMUM_LOCAL_WORKERS}, "
                             f"got {value!r}", field=FIELD)
        return ClusterSpec(workers=int(count))
    match = _ADDRESS.match(text)
    if match is not None:
        if not 1 <= int(match.group(3)) <= 65535:
            raise InputError(f"port must be 1 to 65535, got {value!r}", field=FIELD)
        return ClusterSpec(address=text)
    raise InputError(f"expected local, local:N or tcp://HOST:PORT, got {value!r}", field=FIELD)


def local_worker_count(spec: ClusterSpec) -> int:
    """Worker processes of a local cluster: N, else the machine's cores."""
    return spec.workers if spec.workers is not None else max(os.cpu_count() or 1, 1)


class ClusterClient:
    """The one place that talks to Dask: scatter data, submit tasks and gather results on a `distributed.Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def workers(self) -> int:
        """How many workers the scheduler has now (at least 1, so that work is still split sensibly)."""
        threads: dict[str, int] = self.client.nthreads()  # type: ignore[no-untyped-call]
        return max(len(threads), 1)

    def scatter(self, data: Any, *, broadcast: bool = False) -> Any:
        """Send `data` to the workers once (a list: each item to one worker); returns futures of it."""
        return self.client.scatter(data, broadcast=broadcast, hash=False)  # type: ignore[no-untyped-call]

    def submit(self, function: Callable[..., Any], *arguments: Any) -> Future[Any]:
        """Run `function(*arguments)` on a worker (futures among the arguments are read where they live)."""
        return self.client.submit(function, *arguments, pure=False)

    def gather(self, futures: Sequence[Future[Any]]) -> list[Any]:
        """The futures' results in order (a task's exception is raised here)."""
        result: list[Any] = self.client.gather(list(futures))  # type: ignore[no-untyped-call]
        return result

    def run(self, function: Callable[[], Any]) -> dict[str, Any]:
        """`function()` on every worker, by worker address (for measurements)."""
        result: dict[str, Any] = self.client.run(function)
        return result


@contextmanager
def open_client(spec: ClusterSpec, memory_limit: str | float | None = "auto") -> Iterator[ClusterClient]:
    """A client of the cluster of `spec` (a LocalCluster is started and closed around the block).

    `memory_limit` is each local worker's limit (Dask's "auto" shares the machine's memory; 0 or None: no limit).
    A scheduler that cannot be reached, or has no worker, within 10 s is bad input naming --cluster.
    """
    from distributed import Client, LocalCluster

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout=CONNECT_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as error:
            raise ClusterUnavailable(f"no Dask scheduler at {spec.address}: {error}", field=FIELD) from None
        try:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_SECONDS)
            except (OSError, TimeoutError):
                raise ClusterUnavailable(f"the Dask scheduler at {spec.address} has no worker", field=FIELD) from None
            yield ClusterClient(client)
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    cluster = LocalCluster(n_workers=local_worker_count(spec), threads_per_worker=1,  # type: ignore[no-untyped-call]
                           processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL,
                           memory_limit=memory_limit if memory_limit is not None else 0)
    try:
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield ClusterClient(client)
    finally:
        cluster.close()
