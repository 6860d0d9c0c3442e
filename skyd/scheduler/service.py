"""Where `JobScheduler` and `Caller` used to live: kept so older imports keep working.

The scheduler is split along the job's flow (see docs/scheduler.md); the identity of a
caller lives in `skyd.identity`.
"""

from __future__ import annotations

from skyd.identity import Caller, daemon_identity, user_name
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.selection import Choice

__all__ = ["Caller", "Choice", "JobScheduler", "daemon_identity", "user_name"]
