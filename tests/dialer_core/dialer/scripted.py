"""A telephony whose calls are scripted by the test, so resulting rows are exact."""

from __future__ import annotations

from collections import deque

from dialer_core.dialer.telephony import CallPlan, Profile, Telephony

ANSWER = CallPlan(ring_s=5, outcome="answered", talk_s=60, hold_s=0, wrap_s=10)
NO_ANSWER = CallPlan(ring_s=30, outcome="no_answer")
BUSY = CallPlan(ring_s=3, outcome="busy")


class ScriptedTelephony(Telephony):
    """Plans come from the script in order; when it runs out, every call is ``default``."""

    def __init__(self, *plans: CallPlan, default: CallPlan = ANSWER) -> None:
        super().__init__(seed=0)
        self.script = deque(plans)
        self.default = default

    def plan_call(self, profile: Profile, local_hour: int) -> CallPlan:
        return self.script.popleft() if self.script else self.default

    def chance(self, p: float) -> bool:
        return False


class ScriptedInbound(ScriptedTelephony):
    """Inbound callers talk ``ANSWER``'s 60 s + 10 s wrap and wait ``patience`` seconds."""

    def __init__(self, *plans: CallPlan, patience: float = 30.0) -> None:
        super().__init__(*plans)
        self.patience = patience

    def plan_inbound(self, profile: Profile) -> tuple[CallPlan, float]:
        return ANSWER, self.patience
