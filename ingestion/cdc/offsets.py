"""The relay's own durable position: what has been published and acknowledged by the broker. With
confirmation "landed" it also keeps where everything is stored downstream (the broker alone may
not be durable). Kept in a small JSON file per source (written atomically and fsynced), not in
the replication slot: PostgreSQL may replay transactions at or below the slot's confirmed
position after a restart (PLATFORM.md), so the relay skips every transaction whose commit LSN
is at or below the stored one. The file also records whether the initial snapshot completed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Offsets:
    slot: str = ""
    snapshot_done: bool = False
    snapshot_lsn: int = 0  # the slot's consistent point
    commit_lsn: int = 0  # commit LSN of the last transaction fully acknowledged by the broker
    end_lsn: int = 0  # its end LSN: where streaming resumes
    tx_id: int | None = None
    events: int = 0  # events published by this relay since the slot was created
    #: "schema.table" of every captured table whose rows are downstream (snapshotted, or
    #: streamed since its creation); None in a file written before this was kept
    tables: list[str] | None = None
    #: the last acknowledged event, [topic, partition, offset, checksum of its value]: while
    #: the broker still holds it there, its log is the one the position above refers to
    probe: list[object] | None = None
    #: where everything published is stored downstream, not just acknowledged by the broker
    #: (confirmation "landed", see ingestion.cdc.durability): a relay whose broker lost its
    #: log goes back here; the replication slot is never confirmed past it
    durable_commit_lsn: int = 0
    durable_end_lsn: int = 0
    durable_tx_id: int | None = None
    durable_snapshot: bool = False  # the initial snapshot's events are stored downstream


class OffsetStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Offsets | None:
        try:
            return Offsets(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None

    def save(self, offsets: Offsets) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(asdict(offsets), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
