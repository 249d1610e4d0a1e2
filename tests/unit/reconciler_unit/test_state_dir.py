"""The state directory when the disk is full or a file is damaged: a write that cannot be made is
a ``StateError`` (retried, the earlier file intact); a status file that cannot be read is set
aside and the agent starts from an empty status instead of not starting at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import Reason, StateError
from reconciler.state import StateStore
from reconciler.status import Status


def test_a_status_that_cannot_be_written_is_a_state_error_and_the_old_file_stays(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)
    store.save_status(Status(stack="s", environment="e", last_message="before"))
    os.chmod(tmp_path, 0o500)  # as good as full for the writer
    try:
        if os.geteuid() == 0:  # root writes anyway: make the temporary file's name a folder
            os.chmod(tmp_path, 0o700)
            (tmp_path / ".status.json.tmp").mkdir()
        with pytest.raises(StateError) as caught:
            store.save_status(Status(stack="s", environment="e", last_message="after"))
    finally:
        os.chmod(tmp_path, 0o700)
    assert caught.value.reason is Reason.STATE_UNWRITABLE
    assert "status.json" in caught.value.message
    assert store.load_status("s", "e").last_message == "before"


@pytest.mark.parametrize(
    "damage", [b"\x00\xff garbage", b'{"stack": "s", "environment": "e", "hist']
)
def test_a_status_file_that_cannot_be_read_is_set_aside(tmp_path: Path, damage: bytes) -> None:
    store = StateStore(tmp_path)
    store.status_path.write_bytes(damage)
    status = store.load_status("s", "e")
    assert status == Status(stack="s", environment="e")
    assert not store.status_path.exists()
    assert (tmp_path / "status.json.unreadable").read_bytes() == damage
