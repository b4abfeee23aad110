"""Per-source caps on calls and on INVITEs that no ACK confirmed yet."""

from gateway.admission import SourceLimits


def test_pending_cap_then_confirm_frees_a_pending_slot() -> None:
    limits = SourceLimits(max_calls=5, max_pending=2)
    assert limits.admit("a", "10.0.0.1") and limits.admit("b", "10.0.0.1")
    assert not limits.admit("c", "10.0.0.1")  # two INVITEs not ACKed yet
    assert limits.admit("x", "10.0.0.2")  # another source is not affected
    limits.confirm("a")
    assert limits.admit("c", "10.0.0.1")
    assert limits.refused == 1


def test_call_cap_and_forget() -> None:
    limits = SourceLimits(max_calls=2, max_pending=10)
    for call in ("a", "b"):
        assert limits.admit(call, "h")
        limits.confirm(call)
    assert not limits.admit("c", "h")
    limits.forget("a")
    assert limits.admit("c", "h")
    for call in ("b", "c", "never-admitted"):
        limits.forget(call)
    assert len(limits) == 0 and not limits.calls and not limits.pending


def test_admit_is_idempotent_and_forget_of_pending_frees_both() -> None:
    limits = SourceLimits(max_calls=1, max_pending=1)
    assert limits.admit("a", "h") and limits.admit("a", "h")
    limits.forget("a")
    assert limits.admit("b", "h")
