"""The handle ``instrument`` returns: what application code calls (events, queues, sizes).

It is kept apart from the ``Recorder`` the framework adapters feed, so the public surface
is these few methods and nothing an application could call by mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .jobs import JobRecorder, JobRun
from .queues import InstrumentedQueue
from .recorder import Recorder, adopt_running_loop
from .ws_messages import MessageKinds, MessageTimer


class Metrics:
    """Per-service metrics the application records itself."""

    __slots__ = ("_recorder", "_event_children", "_jobs", "_messages", "server")

    def __init__(self, recorder: Recorder, server: Any = None) -> None:
        self._recorder = recorder
        self._event_children: dict[str, Any] = {}
        self._jobs = JobRecorder(recorder.metrics, recorder.service)
        self._messages = MessageKinds(recorder.metrics, recorder.service)
        self.server = server  # start_metrics_server's HTTP server (port, stop())

    @property
    def service(self) -> str:
        """The ``service`` label of every metric of this handle."""
        return self._recorder.service

    def event(self, kind: str, count: int = 1) -> None:
        """Count ``count`` processed events of ``kind`` (events per minute in the bridge)."""
        child = self._event_children.get(kind)
        if child is None:
            recorder = self._recorder
            child = recorder.metrics.events.labels(recorder.service, kind)
            self._event_children[kind] = child
        child.inc(count)

    def job(self, kind: str) -> JobRun:
        """Time runs of a background job: ``with metrics.job("sync_devices"):``, ``async
        with``, or ``@metrics.job("sync_devices")`` on a sync or async function. Records
        duration by outcome, failures by exception type, runs in progress and the time of
        the last success."""
        return JobRun(self._jobs, kind)

    def message(self, kind: str) -> MessageTimer:
        """Time the handling of one WebSocket message of ``kind`` inside a WebSocket
        handler: ``async with metrics.message("reading"):`` (or ``with``, or as a decorator
        of the function that handles one message). The route is the connection's."""
        return MessageTimer(self._messages, kind)

    def queue(self, name: str, maxsize: int = 0) -> InstrumentedQueue[Any]:
        """A new FIFO ``asyncio.Queue`` whose size and put-to-get waits are exported."""
        adopt_running_loop(self._recorder)
        waits = self._recorder.queue_waits
        q: InstrumentedQueue[Any] = InstrumentedQueue(name, waits, maxsize)
        waits.touch((name,))
        self.size_callback(name, q.qsize)
        return q

    def size_callback(self, name: str, callback: Callable[[], float]) -> None:
        """Report ``callback()`` as ``queue_size{queue=name}`` at every scrape.

        For any other queue length, or a connection pool's size.
        """
        self._recorder.size_callbacks[name] = callback
