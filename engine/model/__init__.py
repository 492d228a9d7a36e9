"""The event-by-event model of a KMDF device's I/O queues with forward progress.

This is forward-progress.md section 9.5 made executable: a `Device` owns `Queue`s; an `Irp`
arrives (`Device.dispatch_irp` or `Queue.arrive`); the framework turns it into a `Request`
(normal, or one of the queue's N reserved requests), parks it, or completes it; driver actions
(`Device.complete`, `forward`, `requeue`, `send_and_forget`, ...) and queue operations
(`Queue.purge`, `stop`, `stop_and_purge`, `drain`, `start`, `delete`) drive it from there.
Every input event is applied to completion, synchronous cascades included, before the next one
(section 9.7). `Device.log` records every observable effect in order, which is what tests read.

Driver behaviour is plugged in as callables on the queue (`io_handlers`, `io_default`,
`canceled_on_queue`, `in_caller_context`, `ready_notify`) and on the request (`cancel_routine`).
"""


from .device import Device, LcgRandom
from .objects import (MANUAL, PARALLEL, SEQUENTIAL, UNLIMITED, BugCheck, ForwardProgressPolicy,
                      FpContext, Irp, Request)
from .queue import Queue

__all__ = ["Device", "LcgRandom", "Queue", "Irp", "Request", "ForwardProgressPolicy", "FpContext",
           "BugCheck", "SEQUENTIAL", "PARALLEL", "MANUAL", "UNLIMITED"]
