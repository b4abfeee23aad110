"""``deploy/grafana/gateway-dashboard.json``: an importable dashboard whose every query names
metrics the gateway really exposes (a renamed metric breaks this test), with bounded labels only.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import FakeSip
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics
from gateway.lifecycle import LegInfo
from gateway.media import AudioLeg, LegConfig
from gateway.media.transport import MixerClock
from gateway.metrics import GatewayMetrics
from gateway.phone_menu import CallDtmf

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "gateway-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PEER = ("192.0.2.10", 40000)

#: PromQL functions, aggregations, operators and modifiers: never metric names.
PROMQL_WORDS = frozenset(
    """
    abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min
    count count_over_time count_values day_of_month day_of_week deriv exp floor group
    histogram_quantile holt_winters idelta increase irate label_join label_replace last_over_time
    ln log10 log2 max max_over_time min min_over_time predict_linear quantile quantile_over_time
    rate resets round scalar sort sort_desc sqrt stddev stddev_over_time stdvar sum sum_over_time
    time timestamp topk vector
    and or unless by without on ignoring group_left group_right bool offset inf nan
    """.split()
)
#: Labels the dashboard may group or filter by: Prometheus's own target labels, and those the
#: gateway exposes (checked below against the exposition too).
TARGET_LABELS = frozenset({"instance", "job"})
#: Labels that would be unbounded (and which the gateway never exposes).
UNBOUNDED = (
    "room_id",
    "room",
    "participant",
    "participant_id",
    "member",
    "caller",
    "caller_number",
    "call_id",
    "display_name",
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?!\w)")
_LABEL_IN_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside strings, label matchers,
    range selectors and grouping clauses that are neither PromQL words nor function calls."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(1)
        if word.lower() in PROMQL_WORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def label_names(expr: str) -> set[str]:
    """Labels an expression filters on (matchers) or groups by (``by``, ``on``, ...)."""
    text = _STRING.sub('""', expr)
    labels: set[str] = set()
    for block in _MATCHERS.findall(text):
        labels.update(_LABEL_IN_MATCHER.findall(block))
    for group in _GROUPING.findall(text):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    return labels


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))  # a collapsed row holds its panels
        else:
            found.append(panel)
    return found


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in query_panels(dashboard) for t in p["targets"]]


async def exposition() -> str:
    """A real registry as the gateway builds it (process metrics, asyncio tasks, WebSockets,
    the gateway's collector), with one live leg and one of each call event, so that every
    labelled family has series. Async: the tasks gauge needs a running loop."""
    metrics = Metrics()
    audio = AudioLeg(
        LegConfig(codec="PCMU", payload_type=0, remote_addr=PEER),
        now=0.0,
        send_before_confirm=False,
    )
    leg = SimpleNamespace(
        member=SimpleNamespace(id="p-1", kind="sip"),
        endpoint=SimpleNamespace(leg=audio),
        dtmf=CallDtmf(inband=False),
    )
    sip: Any = FakeSip()
    sip.legs["p-1"] = leg
    conference: Any = SimpleNamespace(rooms={"room-1": object()})
    clock = MixerClock()
    gateway = GatewayMetrics(metrics.registry, clock=clock, conference=conference, sip=sip)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    live = LegInfo(id="p-1", kind="sip", display_name="x", codec="PCMU")
    gone = LegInfo(id="p-2", kind="phone", display_name="y", codec="PCMA")
    gateway.leg_started(live, t0)
    gateway.leg_answered(live, t0)
    gateway.leg_started(gone, t0)
    gateway.leg_ended(gone, t0, "hangup")
    gateway.call_refused("sip", 404)
    assert clock.on_tick is not None
    clock.on_tick(0.001)
    return generate_latest(metrics.registry).decode()


def exposed(text: str) -> tuple[set[str], set[str]]:
    """Sample names (``_total``, ``_bucket``, ... included) and label names of an exposition."""
    samples: set[str] = set()
    labels: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.add(sample.name)
            labels.update(sample.labels)
    return samples, labels


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = load()
    assert dashboard["title"] and dashboard["uid"]
    assert dashboard["id"] is None  # imported as a new dashboard
    assert 36 <= dashboard["schemaVersion"] <= 41
    inputs = {x["name"]: x for x in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["datasource"] == DATASOURCE
    assert instance["definition"] == "label_values(gateway_rooms, instance)"

    ids = [p["id"] for p in dashboard["panels"]] + [
        p["id"]
        for row in dashboard["panels"]
        if row["type"] == "row"
        for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Calls", "Media", "Mixer", "DTMF & PINs", "Process"]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and grid["x"] + grid["w"] <= 24
    panels = query_panels(dashboard)
    assert len(panels) >= 18
    for panel in panels:
        title = panel["title"]
        assert panel["datasource"] == DATASOURCE, title
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), title
        assert panel["targets"], title
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for t in panel["targets"]:
            assert t["expr"].strip(), title
            assert t.get("datasource", DATASOURCE) == DATASOURCE, title
            assert "$instance" in t["expr"], f"{title}: {t['expr']} ignores $instance"


def test_the_metric_name_extractor() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (instance, le) (rate(gateway_mixer_tick_lateness_"
        'seconds_bucket{instance=~"$instance", kind="sip"}[5m]))) / (sum by (kind) '
        "(gateway_legs) > 0) + process_open_fds"
    )
    assert metric_names(expr) == {
        "gateway_mixer_tick_lateness_seconds_bucket",
        "gateway_legs",
        "process_open_fds",
    }
    assert label_names(expr) == {"instance", "le", "kind"}


async def test_every_metric_the_dashboard_queries_is_exposed() -> None:
    dashboard = load()
    samples, _ = exposed(await exposition())
    used: set[str] = set()
    for expr in exprs(dashboard):
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        missing = names - samples
        assert not missing, f"{expr!r} queries {sorted(missing)}, not in the exposition"
        used |= names
    variable = dashboard["templating"]["list"][0]["definition"]
    assert "gateway_rooms" in samples and "gateway_rooms" in variable
    # the dashboard covers what issue 14 asks for
    for name in (
        "gateway_rooms",
        "gateway_legs",
        "gateway_calls_set_up_total",
        "gateway_calls_refused_total",
        "gateway_calls_failed_total",
        "gateway_calls_ended_total",
        "gateway_call_setup_seconds_bucket",
        "gateway_rtp_packets_received_total",
        "gateway_rtp_packets_sent_total",
        "gateway_rtp_packets_lost_total",
        "gateway_rtp_packets_late_total",
        "gateway_rtp_packets_dropped_total",
        "gateway_jitter_buffer_depth_packets",
        "gateway_jitter_buffer_depth_max_packets",
        "gateway_mixer_tick_lateness_seconds_bucket",
        "gateway_mixer_ticks_skipped_total",
        "gateway_dtmf_digits_total",
        "gateway_pin_failures_total",
        "gateway_pin_lockouts_total",
        "gateway_websocket_connections",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "gateway_asyncio_tasks",
    ):
        assert name in used, f"no panel shows {name}"


async def test_a_renamed_metric_would_be_caught() -> None:
    samples, _ = exposed(await exposition())
    assert metric_names("rate(gateway_calls_setup_total[5m])") - samples
    assert metric_names("sum(gateway_calls_set_up)") - samples  # the family, not its sample


async def test_queries_use_bounded_labels_only() -> None:
    dashboard = load()
    _, labels = exposed(await exposition())
    allowed = labels | TARGET_LABELS
    assert not {label for label in UNBOUNDED if label in allowed}
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            used = label_names(expr) | set(_LEGEND_LABEL.findall(target.get("legendFormat", "")))
            assert used <= allowed, f"{expr!r} uses {sorted(used - allowed)}"
            for label in UNBOUNDED:
                assert not re.search(rf"\b{label}\b", expr), f"{expr!r} uses {label}"


@pytest.mark.parametrize("expr", ["sum by (room_id) (gateway_legs)", 'gateway_legs{caller="1"}'])
def test_an_unbounded_label_would_be_caught(expr: str) -> None:
    assert label_names(expr) & set(UNBOUNDED)
