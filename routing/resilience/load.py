"""In-process load and latency per deployment, read by the router.

`inflight[dep_id]` counts open upstream calls (least busy); `ttfb[dep_id]` is an
exponentially decayed time to first byte in seconds (lowest latency).
"""

from collections import defaultdict

ALPHA = 0.3  # weight of the newest sample in the decayed average


class Stats:
    def __init__(self) -> None:
        self.inflight: defaultdict[int, int] = defaultdict(int)
        self.ttfb: dict[int, float] = {}

    def started(self, dep_id: int) -> None:
        self.inflight[dep_id] += 1

    def finished(self, dep_id: int) -> None:
        self.inflight[dep_id] = max(0, self.inflight[dep_id] - 1)

    def observe_ttfb(self, dep_id: int, seconds: float) -> None:
        old = self.ttfb.get(dep_id)
        self.ttfb[dep_id] = seconds if old is None else ALPHA * seconds + (1 - ALPHA) * old


stats = Stats()
