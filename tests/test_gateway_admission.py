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


def test_process_caps_bound_every_source_together() -> None:
    limits = SourceLimits(max_calls=10, max_pending=10, max_total_calls=3, max_total_pending=2)
    assert limits.admit("a", "h1") and limits.admit("b", "h2")
    assert not limits.admit("c", "h3")  # two calls being set up in all
    assert limits.last_refusal == "process"
    limits.confirm("a")
    assert limits.admit("c", "h3")
    limits.confirm("b")
    limits.confirm("c")
    assert not limits.admit("d", "h4")  # three calls up in all
    limits.forget("b")
    assert limits.admit("d", "h4")
    for call in ("a", "c", "d"):
        limits.forget(call)
    assert limits.total_pending == 0 and len(limits) == 0


def test_source_refusal_is_told_apart_from_process_refusal() -> None:
    limits = SourceLimits(max_calls=1, max_pending=1, max_total_calls=100, max_total_pending=100)
    assert limits.admit("a", "h")
    assert not limits.admit("b", "h") and limits.last_refusal == "source"
