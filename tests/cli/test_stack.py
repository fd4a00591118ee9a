"""The stack supervisor's guards: one `hiveq up` per data dir, and ports checked before starting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hiveq.cli.stack import Stack, port_free
from hiveq.contract.errors import Conflict


def test_a_second_up_on_a_data_dir_in_use_is_refused_naming_the_process(tmp_path: Path) -> None:
    lock = tmp_path / "hiveq-up.pid"
    lock.write_text(f"{os.getpid()} 0 6390\n")
    with pytest.raises(Conflict, match=f"in use by process {os.getpid()}"):
        Stack._check_lock(lock)


def test_a_lock_left_by_a_dead_up_does_not_block_the_next_start(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    lock = tmp_path / "hiveq-up.pid"
    lock.write_text(f"{dead.stdout.strip()} 0 6390\n")
    Stack._check_lock(lock)  # no error: that process is gone


def test_port_free_reports_a_listening_port_as_taken() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_free("127.0.0.1", port)
    assert port_free("127.0.0.1", port)
