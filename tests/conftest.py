"""Fixtures shared across the test tree: the NATS server with JetStream on 127.0.0.1:4222."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

NATS_URL = "nats://127.0.0.1:4222"
NATS_START = ("start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 "
              "-p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log")


def _nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def nats_server() -> str:
    """The NATS server with JetStream at 127.0.0.1:4222 (started if absent; skipped visibly outside CI)."""
    if not _nats_up():
        subprocess.run(NATS_START, shell=True, capture_output=True, timeout=30, check=False)
        for _ in range(20):
            if _nats_up():
                break
            time.sleep(0.25)
        else:
            message = f"no NATS server at {NATS_URL} (tried: {NATS_START})"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
    return NATS_URL
