from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from otel_labelstudio.config import RouteSpec, Settings
from otel_labelstudio.model import Interaction, Message
from otel_labelstudio.routing import Destination, ProjectRef, Router, sampled
from otel_labelstudio.shaping import Shape, default_label_config

TRACE = "0af7651916cd43dd8448eb211c80319c"
HELLO = (Message(role="user", content="hello"),)


def interaction(**fields: Any) -> Interaction:
    values: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": "b7ad6b7169203331",
        "convention": "genai",
        "input": HELLO,
    }
    values.update(fields)
    return Interaction(**values)


def router(*routes: Mapping[str, Any], clock: Any = None, **settings: Any) -> Router:
    s = Settings.load({"routes": list(routes), **settings}, environ={})
    return Router.from_settings(s) if clock is None else Router.from_settings(s, clock=clock)


def project(n: int) -> dict[str, Any]:
    return {"project": {"id": n}}


def routed_to(r: Router, i: Interaction) -> int | None:
    destination = r.route(i)
    return None if destination is None else destination.project.id


# --- default destination ---------------------------------------------------------------------


def test_no_routes_sends_everything_to_the_simple_settings_project() -> None:
    r = router(project_name="QA %Y", mode="chat")
    destination = r.route(interaction())
    assert destination == Destination(
        ProjectRef(
            id=None,
            title=date.today().strftime("QA %Y"),
            label_config=default_label_config(Shape.DIALOGUE),
            shape=Shape.DIALOGUE,
        ),
        route="default",
    )
    assert router(project_id=7).route(interaction()) is not None
    auto = router(mode="auto").route(interaction())
    assert auto is not None and auto.project.shape is Shape.AUTO
    assert auto.project.label_config == default_label_config(Shape.AUTO)


def test_no_content_is_dropped_unless_asked_for() -> None:
    r = router()
    assert r.route(interaction(input=())) is None
    assert r.dropped == {"no_content": 1}
    r = router({"match": {}, **project(1), "include_without_content": True})
    destination = r.route(interaction(input=()))
    assert destination is not None and destination.include_without_content
    r = router({"match": {}, **project(1)})
    assert r.route(interaction(input=())) is None
    assert r.dropped == {"no_content": 1}


# --- matching --------------------------------------------------------------------------------


def test_first_match_wins_and_unmatched_is_dropped() -> None:
    r = router(
        {"match": {"model": "gpt-4o*"}, **project(1)},
        {"match": {"service": "shop"}, **project(2)},
        {"match": {"service": "shop"}, **project(3)},
    )
    assert routed_to(r, interaction(model="gpt-4o-mini", service="shop")) == 1
    assert routed_to(r, interaction(model="claude", service="shop")) == 2
    assert routed_to(r, interaction(model="claude", service="bank")) is None
    assert r.dropped == {"no_route": 1}
    assert r.route_names == ("routes[0]", "routes[1]", "routes[2]")


def test_all_conditions_of_a_match_must_hold() -> None:
    r = router({"match": {"service": "shop", "model": "gpt-*", "operation": "chat"}, **project(1)})
    assert routed_to(r, interaction(service="shop", model="gpt-4", operation="chat")) == 1
    assert routed_to(r, interaction(service="shop", model="gpt-4", operation="embeddings")) is None
    assert routed_to(r, interaction(service="shop", model=None, operation="chat")) is None


def test_glob_and_lists() -> None:
    r = router({"match": {"model": ["gpt-4o*", "o[13]"]}, **project(1)})
    assert routed_to(r, interaction(model="gpt-4o-2024-08-06")) == 1
    assert routed_to(r, interaction(model="o3")) == 1
    assert routed_to(r, interaction(model="o2")) is None
    assert routed_to(r, interaction(model="GPT-4o")) is None  # globs are case-sensitive


def test_operation_list_is_any_of() -> None:
    r = router({"match": {"operation": ["chat", "text_completion"]}, **project(1)})
    assert routed_to(r, interaction(operation="text_completion")) == 1
    assert routed_to(r, interaction(operation="embeddings")) is None


def test_provider_compares_case_insensitively() -> None:
    r = router({"match": {"provider": "OpenAI"}, **project(1)})
    assert routed_to(r, interaction(provider="openai")) == 1
    assert routed_to(r, interaction(provider="azure.ai.openai")) is None
    r = router({"match": {"provider": {"regex": "^AZURE"}}, **project(1)})
    assert routed_to(r, interaction(provider="azure.ai.openai")) == 1


def test_service_and_resource_attributes() -> None:
    r = router(
        {
            "match": {
                "service": "support-*",
                "resource": {"deployment.environment.name": ["prod", "production"]},
            },
            **project(1),
        }
    )
    prod = {"service.name": "support-bot", "deployment.environment.name": "prod"}
    assert routed_to(r, interaction(service="support-bot", resource=prod)) == 1
    staging = {**prod, "deployment.environment.name": "staging"}
    assert routed_to(r, interaction(service="support-bot", resource=staging)) is None
    # service falls back to the resource's service.name
    assert routed_to(r, interaction(resource=prod)) == 1


def test_span_attributes_equals_glob_regex_exists() -> None:
    def match(attributes: Mapping[str, Any]) -> Router:
        return router({"match": {"attributes": attributes}, **project(1)})

    equals = match({"app.tier": {"equals": "gold*"}, "app.retries": 2, "app.flag": True})
    hit = {"app.tier": "gold*", "app.retries": 2, "app.flag": True}
    assert routed_to(equals, interaction(metadata=hit)) == 1
    assert routed_to(equals, interaction(metadata={**hit, "app.tier": "golden"})) is None
    assert routed_to(equals, interaction(metadata={**hit, "app.retries": 2.0})) == 1
    assert routed_to(equals, interaction(metadata={**hit, "app.flag": 1})) is None
    assert routed_to(equals, interaction(metadata={**hit, "app.retries": "2"})) == 1

    glob = match({"http.status_code": "2*"})
    assert routed_to(glob, interaction(metadata={"http.status_code": 204})) == 1
    assert routed_to(glob, interaction(metadata={"http.status_code": 500})) is None

    regex = match({"app.experiment": {"regex": "^eval-[0-9]+$"}})
    assert routed_to(regex, interaction(metadata={"app.experiment": "eval-12"})) == 1
    assert routed_to(regex, interaction(metadata={"app.experiment": "eval-x"})) is None
    assert routed_to(regex, interaction()) is None

    exists = match({"gen_ai.request.temperature": {"exists": True}})
    assert routed_to(exists, interaction(metadata={"gen_ai.request.temperature": 0})) == 1
    assert routed_to(exists, interaction()) is None
    absent = match({"user.id": {"exists": False}})
    assert routed_to(absent, interaction()) == 1
    assert routed_to(absent, interaction(metadata={"user.id": "u1"})) is None

    array = match({"app.tags": "beta"})
    assert routed_to(array, interaction(metadata={"app.tags": ("alpha", "beta")})) == 1


def test_attributes_lifted_into_interaction_fields_still_match() -> None:
    r = router(
        {
            "match": {
                "attributes": {
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.response.finish_reasons": "stop",
                }
            },
            **project(1),
        }
    )
    i = interaction(
        request_model="gpt-4o", model="gpt-4o-2024", provider="openai", finish_reasons=("stop",)
    )
    assert routed_to(r, i) == 1
    assert routed_to(r, interaction(request_model="gpt-4o", provider="openai")) is None


# --- destinations ----------------------------------------------------------------------------


def test_route_destinations(tmp_path: Path) -> None:
    xml = "<View><Text name='t' value='$t'/><TextArea name='r' toName='t'/></View>"
    r = router(
        {"name": "by-id", "match": {"service": "a"}, "project": {"id": 4}},
        {
            "match": {"service": "b"},
            "project": {"title": "B %Y", "shape": "dialogue"},
            "on_error": "skip",
            "redact": [{"pattern": "[0-9]{4}", "replacement": "####"}],
        },
        {"match": {"service": "c"}, "project": {"title": "C"}},
        {"match": {"service": "d"}, "project": {"title": "D", "label_config": xml}},
        {"match": {"service": "e"}, "project": {"title": "E", "shape": "prompt"}},
    )
    a = r.route(interaction(service="a"))
    assert a == Destination(ProjectRef(4, "", "", Shape.AUTO), route="by-id")
    b = r.route(interaction(service="b"))
    assert b is not None
    assert b.project == ProjectRef(
        None,
        date.today().strftime("B %Y"),
        default_label_config(Shape.DIALOGUE),
        Shape.DIALOGUE,
    )
    assert (b.route, b.on_error, b.include_without_content) == ("routes[1]", "skip", False)
    assert [(rule.pattern, rule.replacement) for rule in b.redact] == [("[0-9]{4}", "####")]
    c = r.route(interaction(service="c"))
    assert c is not None and c.project.shape is Shape.AUTO
    assert c.project.label_config == default_label_config(Shape.AUTO)
    d = r.route(interaction(service="d"))
    assert d is not None and d.project.label_config == xml
    e = r.route(interaction(service="e"))
    assert e is not None and e.project.label_config == default_label_config(Shape.PROMPT)
    # Destinations key the pipeline's project cache: the same route gives an equal key.
    assert r.route(interaction(service="b", span_id="1" * 16)) == b
    assert {b.project: 1}[b.project] == 1


def test_drop_route_and_counts() -> None:
    r = router(
        {"match": {"attributes": {"app.synthetic": True}}, "drop": True},
        {"match": {}, **project(1)},
    )
    assert r.route(interaction(metadata={"app.synthetic": True})) is None
    assert routed_to(r, interaction(metadata={"app.synthetic": False})) == 1
    assert r.dropped == {"drop_route": 1}


# --- sampling --------------------------------------------------------------------------------


def test_sampling_follows_the_trace_ids_low_56_bits() -> None:
    low = "f" * 18 + "00000000000001"  # low 56 bits: 1, whatever the high bits
    high = "0" * 18 + "f" * 14  # low 56 bits: 2**56 - 1
    assert sampled(low, 0.001)
    assert not sampled(high, 0.999)
    assert sampled(high, 1.0)
    assert not sampled(low, 0.0)
    # exactly OpenTelemetry's rule: int(trace_id[-14:], 16) < rate * 2**56
    for trace_id in (f"{random.Random(n).getrandbits(128):032x}" for n in range(200)):
        assert sampled(trace_id, 0.3) == (int(trace_id[-14:], 16) < 0.3 * 2**56)
    # no usable trace id still decides the same way every time
    assert sampled("", 0.5) == sampled("", 0.5)
    assert sampled("not-hex-at-all-xx", 0.5) == sampled("not-hex-at-all-xx", 0.5)


def test_sampling_is_per_trace_and_near_the_rate() -> None:
    r = router({"match": {}, **project(1), "sample": 0.5})
    rng = random.Random(20251124)
    kept = 0
    for _ in range(10_000):
        trace_id = f"{rng.getrandbits(128):032x}"
        decisions = {
            r.route(interaction(trace_id=trace_id, span_id=f"{span:016x}")) is not None
            for span in range(3)
        }
        assert len(decisions) == 1  # every span of a trace decides the same
        kept += decisions.pop()
    # binomial(10_000, 0.5): sd 50; 5 sd either side
    assert 4750 <= kept <= 5250
    assert r.dropped["sampled_out"] == 3 * (10_000 - kept)
    # another replica (a fresh router) decides the same
    other = router({"match": {}, **project(1), "sample": 0.5})
    assert (other.route(interaction()) is None) == (r.route(interaction()) is None)


# --- rate limits -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_a_token_bucket_per_route() -> None:
    clock = FakeClock()
    r = router(
        {"match": {"service": "busy"}, **project(1), "rate_limit": 60},
        {"match": {}, **project(2)},
        clock=clock,
    )
    busy = interaction(service="busy")
    assert sum(r.route(busy) is not None for _ in range(100)) == 60  # a minute's burst
    assert r.dropped == {"rate_limited": 40}
    assert routed_to(r, interaction(service="quiet")) == 2  # other routes are not limited
    clock.now += 1.0  # 60 a minute: one more a second
    assert r.route(busy) is not None
    assert r.route(busy) is None
    clock.now += 3600  # refills to the burst size, no more
    assert sum(r.route(busy) is not None for _ in range(100)) == 60


def test_sampled_out_spans_spend_no_tokens() -> None:
    clock = FakeClock()
    r = router({"match": {}, **project(1), "sample": 0.5, "rate_limit": 1}, clock=clock)
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(50)]
    out = [t for t in ids if not sampled(t, 0.5)]
    kept = [t for t in ids if sampled(t, 0.5)]
    for trace_id in out:
        assert r.route(interaction(trace_id=trace_id)) is None
    assert r.route(interaction(trace_id=kept[0])) is not None  # the one token is still there
    assert r.route(interaction(trace_id=kept[1])) is None
    assert r.dropped == {"sampled_out": len(out), "rate_limited": 1}


def test_order_match_drop_content_sample_rate() -> None:
    clock = FakeClock()
    r = router({"match": {}, **project(1), "sample": 0.0, "rate_limit": 1}, clock=clock)
    assert r.route(interaction(input=())) is None  # no content is checked before sampling
    assert r.route(interaction()) is None
    assert r.dropped == {"no_content": 1, "sampled_out": 1}


def test_example_file_routes() -> None:
    example = Path(__file__).parents[2] / "examples" / "routes.yaml"
    s = Settings.load({"config": str(example)}, environ={"LABEL_STUDIO_API_KEY": "k"})
    r = Router.from_settings(s)
    assert r.route_names[0] == "support-gpt4o"
    synthetic = interaction(metadata={"app.synthetic": True}, operation="chat")
    assert r.route(synthetic) is None and r.dropped["drop_route"] == 1
    chat = r.route(interaction(operation="chat", input=()))
    assert chat is not None and chat.project.id == 42 and chat.route == "chat"


def test_route_spec_is_data() -> None:
    with pytest.raises(ValueError, match="drop"):
        RouteSpec.model_validate({"match": {}})
