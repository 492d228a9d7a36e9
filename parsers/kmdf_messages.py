"""KMDF framework messages (forward-progress.md section 8.2) -> event-table kinds and fields.

One catalogue, as data: each entry is the framework's own format text with typed placeholders,
the kind it maps to and a short name (event_name becomes `IFR/<name>`). Shared by the IFR text
reader, the tracefmt reader and the binary WPP decoder:

    stream = KmdfMessageStream()
    hit = stream.classify("Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES")
    # -> Classified(kind="request_alloc_failed", name="Could not create WDFREQUEST",
    #               fields={"status": 0xC000009A, "irp": <IRP of the last dispatch line>})
    stream.classify("some driver text") -> None (not a framework message)
    stream.rows(message) -> [row dict, ...] | None   # what a reader emits: implied rows first

Placeholders: {name:p} pointer/handle (hex, `0x` optional), {name:x} hex, {name:d} decimal,
{name:STATUS} %!STATUS! (symbol, hex, or `SYMBOL(0x...)`), {name:IRPMJ} %!IRPMJ!, {name:w} a
word, {name:s} any text (lazy). A literal `0x` before {p} is optional; runs of spaces match any
whitespace (several framework messages have doubled spaces).

Context the messages themselves leave out (section 8.4), kept by KmdfMessageStream:
* "Could not create WDFREQUEST", "Memory allocation failed" and an invalid Examine action name no
  IRP: they take the IRP of the most recent dispatch line ("WDFDEVICE … IRP 0x…") not yet
  queued; "Memory allocation failed" with no pending dispatch (policy pre-allocation) is `other`.
* Request handles are tied to IRPs by "Queuing WDFREQUEST h" after a dispatch and by "Completing
  WDFREQUEST h for IRP i"; later request-only lines get the IRP filled.
* Parking: a dispatch whose "Memory allocation failed" is followed by neither a refusal nor a
  request offered to the queue ("Queuing …" / "not accepting …") in the same call sequence was
  parked. A request offered later without a dispatch before it is a recycled reserved request
  serving the oldest parked IRP (FIFO, section 5.3), so it takes that IRP. A purge, drain or
  stop-and-purge cancels parked IRPs untraced; the parked list is then emptied.
* Queue kinds are emitted once per state change of a queue: "All WDFQUEUE q requests cancelled",
  "WDFQUEUE q is purged, calling driver callback" and the first "Cancelling WDFREQUEST h, WDFQUEUE
  q" (only purges cancel queued requests) -> queue_purge; "WDFQUEUE q is idle, calling driver
  callback" -> queue_stop, or queue_stop_purge after a purge of q (Stop-and-purge logs the same
  cancel lines); the first "power stopping (Drain) in progress" refusal -> queue_drain (an extra
  row before its completion); a "Queuing WDFREQUEST … on WDFQUEUE q" while q is purged or
  drained -> queue_start (such a queue accepts nothing until started; no start line exists).
* The framework's own completions are irp_complete: "not accepting requests … completing
  WDFREQUEST" (its status, STATUS_INVALID_DEVICE_STATE), "Cancelling WDFREQUEST" (queued request
  cancelled by a purge: STATUS_CANCELLED), "Zero length WDFREQUEST … completed automatically"
  (success, 0 bytes), "Driver has no event callback … completing". The IRP comes from the
  pending dispatch or the request's Queuing line. FxRequest::Complete may log the same completion
  again as "Completing WDFREQUEST …" (VERBOSE only): that line is then `other`, so a completion is
  counted once whether or not VerboseOn was set.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from fpreplay.parsers.wpp.symbols import parse_irpmj, parse_status

# (short name, framework text with placeholders, kind). Order matters: first match wins.
CATALOGUE: tuple[tuple[str, str, str], ...] = (
    ("Dispatch",
     "WDFDEVICE 0x{device_handle:p} !devobj 0x{device:p} {major:IRPMJ}, IRP_MN {minor:x}, IRP "
     "0x{irp:p}",
     "irp_dispatch"),
    ("Could not create WDFREQUEST",
     "Could not create WDFREQUEST, {status:STATUS}",
     "request_alloc_failed"),
    ("Memory allocation failed",
     "Memory allocation failed {status:STATUS}",
     "request_alloc_failed"),
    ("Forward action fail the Irp",
     "Forward action on WDFQUEUE {queue:p} says that framework should fail the Irp {irp:p}, "
     "{status:STATUS}",
     "fp_policy_refused"),
    ("Examine invalid action",
     "EvtIoExamineIrp callback on WDFQUEUE {queue:p} returned an invalid action {action:d}, "
     "{status:STATUS}",
     "fp_policy_refused"),
    ("Completing WDFREQUEST",
     "Completing WDFREQUEST 0x{request:p} for IRP 0x{irp:p} with Information 0x{bytes:x}, "
     "{status:STATUS}",
     "irp_complete"),
    ("Queuing WDFREQUEST", "Queuing WDFREQUEST 0x{request:p} on WDFQUEUE 0x{queue:p}", "other"),
    ("Forward not accepting",
     "WDFQUEUE 0x{queue:p} is not accepting requests state is {state:s}, {drain:s}WDFREQUEST "
     "0x{request:p} {status:STATUS}",
     "other"),
    ("Not accepting requests",
     "WDFQUEUE 0x{queue:p} is not accepting requests, state is {state:s}, {drain:s}completing "
     "WDFREQUEST 0x{request:p} {status:STATUS}",
     "irp_complete"),
    ("Calling driver", "Calling driver EvtIo{callback:w} for WDFREQUEST 0x{request:p}", "other"),
    ("Zero length completed",
     "Zero length WDFREQUEST 0x{request:p} completed automatically by WDFQUEUE 0x{queue:p}",
     "irp_complete"),
    ("No event callback",
     "Driver has no event callback for {type:s}, completing WDFREQUEST 0x{request:p} with "
     "{status:STATUS}",
     "irp_complete"),
    ("Queue already deleted",
     "WDFQUEUE 0x{queue:p} is already deleted{sep:s} {status:STATUS}",
     "other"),
    ("Callback already registered",
     "WDFQUEUE 0x{queue:p} already has a {callback:w} callback registered 0x{routine:p}{sep:s} "
     "{status:STATUS}",
     "other"),
    ("Cancelling WDFREQUEST",
     "Cancelling WDFREQUEST 0x{request:p}, WDFQUEUE 0x{queue:p}",
     "irp_complete"),
    ("All requests cancelled", "All WDFQUEUE 0x{queue:p} requests cancelled", "queue_purge"),
    ("All driver cancellable cancelled",
     "All driver cancellable requests cancelled in WDFQUEUE 0x{queue:p}",
     "other"),
    ("Queue purged", "WDFQUEUE 0x{queue:p} is purged, calling driver callback", "queue_purge"),
    ("Queue idle", "WDFQUEUE 0x{queue:p} is idle, calling driver callback", "queue_stop"),
    ("Waiting for requests",
     "Waiting for {count:d} requests to complete on WDFQUEUE 0x{queue:p}",
     "other"),
    ("Cancelled on queue",
     "WDFREQUEST 0x{request:p} was cancelled while on WDFQUEUE 0x{queue:p}",
     "other"),
    ("CanceledOnQueue callback",
     "Calling CanceledOnQueue routine for WDFREQUEST 0x{request:p} on WDFQUEUE 0x{queue:p}",
     "other"),
    ("CancelRoutine callback",
     "Calling CancelRoutine routine for WDFREQUEST 0x{request:p}",
     "other"),
    ("Queue shut down",
     "WDFQUEUE 0x{queue:p} is shut down, preventing queue from accepting requests",
     "other"),
    ("Queue not dispatching",
     "WDFQUEUE 0x{queue:p} not in dispatching state, current state is {state:s}$",
     "other"),
    ("Requeue not manual",
     "Requeue is allowed only for a manual queue, WDFREQUEST 0x{request:p} {status:STATUS}",
     "other"),
    ("Forward reserved to parent",
     "Cannot forward reserved WDFREQUEST 0x{request:p} to a parent WDFDEVICE 0x{device_handle:p}, "
     "{status:STATUS}",
     "other"),
    # forward-progress policy configuration and pre-allocation (section 3): no IRP involved
    ("Already configured for forward progress",
     "Queue is already configured for forward progress {status:STATUS}",
     "other"),
    ("Policy Size mismatch",
     "WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY Size 0x{size:x}, expected 0x{expected:x}, "
     "{status:STATUS}",
     "other"),
    ("Examine callback can't be null",
     "Examine callback can't be null for WdfIoForwardProgressReservedPolicyUseExamine "
     "{status:STATUS}",
     "other"),
    ("Need more than 0 reserved Requests",
     "Need to have more than 0 reserved Requests {status:STATUS}",
     "other"),
    ("Policy on non-top level queue",
     "Setting Forward progress policy on non-top level queue {status:STATUS}",
     "other"),
    ("Forward progress context allocation failed",
     "Could not allocate memory for forward progress context {status:STATUS}",
     "other"),
    ("Failure to allocate reserved request",
     "Failure to allocate request {status:STATUS}",
     "other"),
    ("Reserved resources callback failed",
     "Failure from m_IoReservedResourcesAllocate callback {status:STATUS}",
     "other"),
    ("Wrong IRQL",
     "Called at wrong IRQL; at level {irql:d}, should be at level {expected:d}",
     "other"),
)

_PLACEHOLDER = re.compile(r"(?:0x)?\{(\w+):(\w+)\}")
_TYPES = {
    "p": r"(?:0x)?(?P<{n}>[0-9A-Fa-f]+)",
    "x": r"(?:0x)?(?P<{n}>[0-9A-Fa-f]+)",
    "d": r"(?P<{n}>-?\d+)",
    "w": r"(?P<{n}>\w+)",
    "s": r"(?P<{n}>.*?)",
    "STATUS": r"(?P<{n}>[A-Za-z_][\w]*(?:\s*\(\s*0x[0-9A-Fa-f]+\s*\))?|0x[0-9A-Fa-f]+|-?\d+)",
    "IRPMJ": r"(?P<{n}>(?:0x[0-9A-Fa-f]+)?\s*\(?IRP_MJ_\w+\)?|0x[0-9A-Fa-f]+|\d+)",
}
_POINTER_FIELDS = {"irp", "request"}
_HANDLE_FIELDS = {"queue", "device", "device_handle", "routine"}


def _compile(template: str) -> tuple[re.Pattern, dict[str, str], str]:
    parts: list[str] = []
    types: dict[str, str] = {}
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(_literal(template[pos:m.start()]))
        name, kind = m.group(1), m.group(2)
        types[name] = kind
        parts.append(_TYPES[kind].format(n=name))
        pos = m.end()
    tail = template[pos:]
    anchored = tail.endswith("$")
    parts.append(_literal(tail.rstrip("$")) + (r"\s*$" if anchored else ""))
    # a quick pre-filter: the longest whole word of the text (whitespace varies, words don't)
    words = re.split(r"\s+|\{\w+:\w+\}", template.replace("0x{", "{").rstrip("$"))
    keyword = max(words, key=len)
    return re.compile("".join(parts)), types, keyword


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(chunk) for chunk in re.split(r"\s+", text)) if text.strip() else \
        (r"\s*" if text else "")


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str
    pattern: re.Pattern
    types: dict
    keyword: str


ENTRIES: tuple[_Entry, ...] = tuple(_Entry(name, kind, *_compile(text))
                                    for name, text, kind in CATALOGUE)


@dataclass
class Classified:
    kind: str
    name: str                       # catalogue short name; event_name = "IFR/" + name
    fields: dict = field(default_factory=dict)   # event-table columns: irp request queue device
                                                 # major minor status bytes
    extra: list = field(default_factory=list)    # rows the message implies just before it
                                                 # (a queue state change), as Classified

    def row(self) -> dict:
        return {**self.fields, "kind": self.kind, "event_name": "IFR/" + self.name}


def match(message: str) -> tuple[_Entry, dict] | None:
    """The catalogue entry a message body matches and its raw typed values (no context)."""
    for e in ENTRIES:
        if e.keyword and e.keyword not in message:
            continue
        m = e.pattern.search(message)
        if m:
            return e, _convert(m.groupdict(), e.types)
    return None


def _convert(raw: dict, types: dict) -> dict:
    out: dict = {}
    for name, text in raw.items():
        if text is None:
            continue
        kind = types[name]
        if kind in ("p", "x"):
            out[name] = int(text, 16)
        elif kind == "d":
            out[name] = int(text)
        elif kind == "STATUS":
            out[name] = parse_status(text)
        elif kind == "IRPMJ":
            out[name] = parse_irpmj(text)
        else:
            out[name] = text.strip()
    return out


def handle_text(value: int) -> str:
    """A WDF handle or device object as the event table's queue/device text."""
    return f"0x{value:x}"


# Lines where the framework itself completes a request (no driver involved); the same completion
# may also be logged as "Completing WDFREQUEST …" (VERBOSE), which is then not counted twice.
_FRAMEWORK_COMPLETIONS = ("Not accepting requests", "Zero length completed", "No event callback",
                          "Cancelling WDFREQUEST")
_FIXED_STATUS = {"Zero length completed": 0x00000000, "Cancelling WDFREQUEST": 0xC0000120}
# Messages that belong to the call sequence of an arriving IRP whose allocation failed.
_CALL_SEQUENCE = ("Memory allocation failed", "Could not create WDFREQUEST",
                  "Examine invalid action", "Forward action fail the Irp", "Queuing WDFREQUEST",
                  "Not accepting requests")


_FILL = ("irp", "device", "major", "minor")


class KmdfMessageStream:
    """Classifies framework messages in log order, carrying the context messages leave out.

    `rows(message)` gives the event rows (dicts with kind and event_name) a message stands for, or
    None for a message that is not the framework's; `classify(message)` gives the main row as a
    Classified (its `extra` holds implied rows, e.g. a queue_drain before the first request a
    draining queue refuses)."""

    def __init__(self) -> None:
        # One call sequence (one thread): what the messages of an arriving IRP leave out.
        self.pending_dispatch: dict | None = None       # last dispatch not yet queued/failed
        self.pending_failed = False                     # ... and its request allocation failed
        self.last_name: str | None = None               # the previous framework message
        # A framework completion and its VERBOSE "Completing" echo come from one thread too.
        self.framework_completed: dict[int, int | None] = {}   # WDFREQUEST -> IRP it completed
        # The driver as a whole (see thread_stream): requests, queues and the parked list.
        self._seen = [0]                                # framework messages seen (index)
        self.parked: deque[dict] = deque()              # dispatches parked for a reserved request
        self.accepted_at: dict[str | None, int] = {}    # queue -> index of its last Queuing line
        self.refusing: set = set()                      # queues seen refusing requests
        self.request_irp: dict[int, int] = {}           # WDFREQUEST -> IRP
        self.queue_state: dict[str, str] = {}           # queue -> last queue kind emitted
        self.state_since: dict[str | None, int] = {}    # queue -> time of its last state change
        self._ts: int | None = None                     # the current message's time, if known

    _DRIVER_STATE = ("_seen", "parked", "accepted_at", "refusing", "request_irp", "queue_state",
                     "state_since")

    @property
    def index(self) -> int:
        """Framework messages seen so far by this driver's streams, in log order."""
        return self._seen[0]

    def thread_stream(self) -> "KmdfMessageStream":
        """A stream for another thread of the same driver. A dispatch line and the lines of its
        call sequence come from one thread, so each thread keeps its own pending dispatch; the
        request->IRP links, queue states and parked IRPs belong to the driver (a reserved request
        recycled on one thread serves an IRP parked by another) and are shared."""
        other = KmdfMessageStream()
        for name in self._DRIVER_STATE:
            setattr(other, name, getattr(self, name))
        return other

    def rows(self, message: str, ts: int | None = None) -> list[dict] | None:
        hit = self.classify(message, ts)
        if hit is None:
            return None
        return [c.row() for c in hit.extra] + [hit.row()]

    def _take_pending(self, f: dict) -> None:
        if self.pending_dispatch is not None:
            _fill_from(f, self.pending_dispatch)
        self.pending_dispatch, self.pending_failed = None, False

    def _settle_pending(self) -> None:
        """The pending dispatch's call sequence is over: with a failed allocation, no refusal and
        no request offered, the IRP was parked (forward-progress.md 8.4)."""
        if self.pending_dispatch is not None and self.pending_failed:
            self.pending_dispatch["_parked_at"] = self.index
            self.parked.append(self.pending_dispatch)
        self.pending_dispatch, self.pending_failed = None, False

    def _offered_irp(self, f: dict) -> None:
        """The IRP of a request offered to a queue (Queuing / not accepting): the pending dispatch
        when it is the same call sequence, else (a reserved request recycled, 5.3) the oldest
        parked IRP, else whatever the request handle is known to carry."""
        immediate = self.last_name in ("Dispatch", "Memory allocation failed")
        if self.pending_dispatch is not None and (immediate or not self.pending_failed):
            self._take_pending(f)
            return
        self._settle_pending()
        if self.parked:
            _fill_from(f, self.parked.popleft())
        elif f.get("request") in self.request_irp:
            f["irp"] = self.request_irp[f["request"]]

    def _queue_change(self, queue: str | None, kind: str) -> Classified | None:
        """A queue_* row unless the queue is already known to be in that state."""
        last = self.queue_state.get(queue)
        if kind == "queue_stop" and last == "queue_purge":
            kind = "queue_stop_purge"
        elif kind == last or (kind == "queue_purge" and last == "queue_stop_purge"):
            return None
        self.queue_state[queue] = kind
        if self._ts is not None:
            self.state_since[queue] = self._ts
        if kind in ("queue_purge", "queue_drain", "queue_stop_purge"):
            # parked IRPs are completed STATUS_CANCELLED here, untraced (8.3): none are left
            self._settle_pending()
            self.parked.clear()
        return Classified(kind=kind, name="", fields={"queue": queue} if queue else {})

    def classify(self, message: str, ts: int | None = None) -> Classified | None:
        """`ts` (optional): the message's time, for logs read out of time order (binary WPP
        comes per-CPU buffer): a line older than its queue's last state change says nothing
        about the state since."""
        self._ts = ts
        hit = match(message)
        if hit is None:
            return None
        entry, v = hit
        kind, name = entry.kind, entry.name
        f = _row_fields(v)
        extra: list[Classified] = []
        if self.pending_failed and name not in _CALL_SEQUENCE:
            self._settle_pending()
        if kind == "irp_dispatch":
            self._settle_pending()
            self.pending_dispatch = dict(f)
        elif name == "Memory allocation failed":
            if self.pending_dispatch is None:
                kind = "other"                   # a pre-allocation, not an arriving IRP
            else:                                # stays pending: a reserved request, a refusal
                _fill_from(f, self.pending_dispatch)   # or parking follows
                self.pending_failed = True
        elif name in ("Could not create WDFREQUEST", "Examine invalid action"):
            if self.pending_dispatch is None:
                kind = "other"
            else:
                self._take_pending(f)
        elif name == "Forward action fail the Irp":
            if self.pending_dispatch and self.pending_dispatch.get("irp") == f.get("irp"):
                self._take_pending(f)
        elif name == "Queuing WDFREQUEST":
            kind = self._queuing(f, kind, ts)
        elif name == "Completing WDFREQUEST":
            kind = self._completing(f, kind)
        elif name in _FRAMEWORK_COMPLETIONS:
            self._framework_completion(name, f, v, extra)
        elif kind in ("queue_purge", "queue_stop"):
            change = self._queue_change(f.get("queue"), kind)
            kind = change.kind if change else "other"  # the same purge, seen by its second message
        request = f.get("request")
        if "irp" not in f and request is not None and request in self.request_irp:
            f["irp"] = self.request_irp[request]
        for c in extra:
            c.name = name
        self.last_name = name
        self._seen[0] += 1
        return Classified(kind=kind, name=name, fields=f, extra=extra)

    def _queuing(self, f: dict, kind: str, ts: int | None) -> str:
        """A request offered to a queue that accepted it: the queue accepts again (a purged or
        drained queue that accepts a request has started), and the request carries its IRP."""
        queue = f.get("queue")
        self.accepted_at[queue] = self.index
        self.refusing.discard(queue)
        self._offered_irp(f)
        if "irp" in f:
            self.request_irp[f.get("request")] = f["irp"]
        since = self.state_since.get(queue)
        if self.queue_state.get(queue) in ("queue_purge", "queue_drain") and (
                ts is None or since is None or ts >= since):
            kind = "queue_start"
            self.queue_state[queue] = kind
            if ts is not None:
                self.state_since[queue] = ts
        return kind

    def _completing(self, f: dict, kind: str) -> str:
        """The driver completes a request: not a second completion when the framework's own line
        already completed it."""
        request = f.get("request")
        if request in self.framework_completed:
            done_irp = self.framework_completed.pop(request)
            if done_irp is None or done_irp == f.get("irp"):
                kind = "other"                   # already counted at the framework's line
        self.request_irp.pop(request, None)
        return kind

    def _framework_completion(self, name: str, f: dict, v: dict, extra: list) -> None:
        """The framework completes a request itself (refused, zero length, cancelled ...); the
        queue state change it implies, if any, goes to `extra`."""
        queue, request = f.get("queue"), f.get("request")
        if name == "Not accepting requests":
            if queue not in self.refusing:
                # The queue stopped accepting since its last Queuing line: a purge or drain
                # ran in between and cancelled, untraced, every IRP parked before that line.
                self.refusing.add(queue)
                since = self.accepted_at.get(queue, -1)
                keep = [pd for pd in self.parked if pd["_parked_at"] > since]
                self.parked.clear()            # in place: other threads' streams share it
                self.parked.extend(keep)
            self._offered_irp(f)
            if "Drain" in v.get("drain", ""):
                change = self._queue_change(queue, "queue_drain")
                if change:
                    extra.append(change)
        if name == "Cancelling WDFREQUEST":
            # only purges (and stop-and-purge) cancel queued requests
            change = self._queue_change(queue, "queue_purge")
            if change:
                extra.append(change)
        if name in _FIXED_STATUS:
            f["status"] = _FIXED_STATUS[name]
            if name == "Zero length completed":
                f["bytes"] = 0
        if "irp" not in f and request in self.request_irp:
            f["irp"] = self.request_irp[request]
        self.request_irp.pop(request, None)
        self.framework_completed[request] = f.get("irp")


def _row_fields(v: dict) -> dict:
    """A matched message's values as event-table fields (handles as text)."""
    f = {col: v[col] for col in ("irp", "request", "status", "bytes", "major", "minor")
         if col in v}
    if "queue" in v:
        f["queue"] = handle_text(v["queue"])
    if "device" in v:
        f["device"] = handle_text(v["device"])
    return f


def _fill_from(f: dict, dispatch: dict) -> None:
    """The IRP's own columns, from the dispatch line that brought it (a dispatch kept as parked
    also holds "_parked_at", which is not a column)."""
    for col in _FILL:
        if col in dispatch:
            f.setdefault(col, dispatch[col])
