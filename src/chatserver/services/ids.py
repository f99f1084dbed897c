"""Run ids that sort in creation order, so a chat's queue is first come, first served.

A UUID in layout (8-4-4-4-12 hex): 48 bits of milliseconds since the epoch, 16 bits of a per-process
counter (runs created within one millisecond, as under a fake clock, keep their order), 64 random
bits. Fixed width, so text order is numeric order on both databases.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import datetime

_counter = itertools.count()


def sortable_id(now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & (2**48 - 1)
    sequence = next(_counter) & 0xFFFF
    return str(uuid.UUID(int=(millis << 80) | (sequence << 64) | secrets.randbits(64)))
