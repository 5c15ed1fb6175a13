"""Progress from a Modal container to the worker: a `modal.Queue` partition per job (modal_app/protocol.py).

`.local()` (tests, no Modal account) has no Queue to reach, so events go to LOCAL_PROGRESS there; in a container
they go to the named Queue the worker reads.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import modal

from modal_app import protocol

log = logging.getLogger("tenkaigen.modal_app")


class LocalProgress:
    """An in-process stand-in for the progress Queue, used when the method runs through `.local()`."""

    def __init__(self) -> None:
        self.partitions: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def put(self, event: dict[str, Any], *, partition: str, **_: Any) -> None:
        self.partitions[partition].append(event)


LOCAL_PROGRESS = LocalProgress()


class ProgressChannel:
    """Puts a job's events into its partition; a failed put is logged once and never fails the generation."""

    def __init__(self, queue: Any, partition: str) -> None:
        self.queue, self.partition, self.failed = queue, partition, False

    def put(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put(
                event, partition=self.partition, partition_ttl=protocol.PROGRESS_PARTITION_TTL_S, timeout=5
            )
        except Exception as exc:  # progress is best effort; the result still comes back as the return value
            if not self.failed:
                log.warning("progress for partition %s not delivered: %s", self.partition, exc)
            self.failed = True


def progress_channel(job_id: str) -> ProgressChannel:
    """The channel of one job: its Queue partition, or LOCAL_PROGRESS under `.local()`."""
    partition = protocol.partition_key(job_id)
    if modal.is_local():
        return ProgressChannel(LOCAL_PROGRESS, partition)
    return ProgressChannel(modal.Queue.from_name(protocol.PROGRESS_QUEUE_NAME, create_if_missing=True), partition)
