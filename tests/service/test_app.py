"""The HTTP service in-process (FastAPI's TestClient): every route, every error status, auth.

The round-trip test runs on every backend (``make_store``); the others run on SQLite
only because what they pin — request validation, status codes, the JSON error shape,
authentication — happens before and above the store and is the same on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from rlmemory.learners.bandits import EpsilonGreedyAgent
from rlmemory.service import create_app
from rlmemory.service.keys import new_api_key
from rlmemory.store import open_store

ACTIONS = [{"id": "sports"}, {"id": "politics"}, {"id": "weather"}]
CONTEXT = [{"user": {"country": "fr", "age": 31}}, {"device": "mobile"}]


def rank_body(**changes: Any) -> dict[str, Any]:
    return {"contextFeatures": CONTEXT, "actions": ACTIONS, **changes}


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "memory.db")


@pytest.fixture
def client(db_path: str) -> Iterator[TestClient]:
    with TestClient(create_app(db_path, sweep_seconds=0, refresh_seconds=0)) as test_client:
        yield test_client


def assert_error(response: Any, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert "\n" not in body["detail"]
    for word in words:
        assert word in body["detail"]


# ------------------------------------------------------------------ round trip
def test_rank_reward_and_stats_round_trip_on_every_backend(make_store: Any) -> None:
    app = create_app(make_store.location, sweep_seconds=0, refresh_seconds=0)
    with TestClient(app) as client:
        answer = client.post("/loops/news/rank", json=rank_body(eventId="e1"))
        assert answer.status_code == 201
        body = answer.json()
        assert body["eventId"] == "e1"
        assert [item["id"] for item in body["ranking"]] == ["sports", "politics", "weather"]
        assert math.isclose(sum(item["probability"] for item in body["ranking"]), 1.0)
        assert body["rewardActionId"] in {"sports", "politics", "weather"}
        assert client.post("/loops/news/events/e1/reward", json={"value": 0.75}).status_code == 204
        stats = client.get("/loops/news").json()
    assert (stats["ranks"], stats["rewards"], stats["meanReward"]) == (1, 1, 0.75)
    assert stats["pendingEvents"] == 0
    store = make_store()
    decision = store.get_agent_decisions("news")[0]
    assert decision["selected_action"] == body["rewardActionId"]
    assert decision["reward"]["status"] == "observed" and decision["reward"]["value"] == 0.75
    assert store.get_setting("loops", "news")["learner"] == "epsilon_greedy"


def test_probabilities_are_the_learners_and_excluded_actions_get_zero(
    client: TestClient, db_path: str
) -> None:
    for number in range(20):
        answer = client.post(
            "/loops/news/rank", json=rank_body(eventId=f"e{number}", excludedActions=["weather"])
        ).json()
        probabilities = {item["id"]: item["probability"] for item in answer["ranking"]}
        assert probabilities["weather"] == 0.0
        assert answer["rewardActionId"] != "weather"
        reward = 1.0 if answer["rewardActionId"] == "politics" else 0.0
        client.post(f"/loops/news/events/e{number}/reward", json={"value": reward})
    last = client.post("/loops/news/rank", json=rank_body(excludedActions=["weather"])).json()
    with open_store(db_path) as store:
        decision = store.get_agent_decisions("news")[0]
        learner = EpsilonGreedyAgent("news", store, ["sports", "politics"], epsilon=0.2)
        expected = learner.action_probabilities(np.asarray(decision["features"]))
    shown = {item["id"]: item["probability"] for item in last["ranking"]}
    assert shown == {**expected, "weather": 0.0}
    assert decision["propensity"] == pytest.approx(expected[decision["selected_action"]])


def test_a_repeated_event_id_returns_the_same_decision(client: TestClient, db_path: str) -> None:
    first = client.post("/loops/news/rank", json=rank_body(eventId="same")).json()
    again = client.post("/loops/news/rank", json=rank_body(eventId="same")).json()
    assert again == first
    with open_store(db_path) as store:
        assert store.count_agent_decisions("news") == 1


def test_rewards_after_the_first_are_recorded_not_learned(client: TestClient, db_path: str) -> None:
    client.post("/loops/news/rank", json=rank_body(eventId="e"))
    client.post("/loops/news/events/e/reward", json={"value": 1.0})
    client.post("/loops/news/events/e/reward", json={"value": 0.0})
    with open_store(db_path) as store:
        reward = store.get_agent_decisions("news")[0]["reward"]
        assert reward["value"] == 1.0 and reward["late_rewards"][0]["value"] == 0.0
        assert store.agent_stats("news")["rewards"] == 1


def test_sum_aggregation_learns_the_sum_when_the_window_closes(db_path: str) -> None:
    with TestClient(create_app(db_path, sweep_seconds=0, refresh_seconds=0)) as client:
        client.put("/loops/news", json={"rewardAggregation": "sum", "rewardWaitTime": "PT1H"})
        client.post("/loops/news/rank", json=rank_body(eventId="e"))
        client.post("/loops/news/events/e/reward", json={"value": 0.25})
        client.post("/loops/news/events/e/reward", json={"value": 0.5})
        loop = client.app.state.rlmemory.loops.get("news")
        assert loop.apply_expired_rewards(now=loop.store.get_agent_decisions("news")[0][
            "reward"]["deadline"] + 1) == 1  # fmt: skip
    with open_store(db_path) as store:
        reward = store.get_agent_decisions("news")[0]["reward"]
        assert (reward["status"], reward["value"], reward["source"]) == ("observed", 0.75, "sum")


def test_events_without_reward_learn_the_default_when_the_window_closes(db_path: str) -> None:
    with TestClient(create_app(db_path, sweep_seconds=0, refresh_seconds=0)) as client:
        client.put("/loops/news", json={"defaultReward": -0.5, "rewardWaitTime": 60})
        client.post("/loops/news/rank", json=rank_body(eventId="e"))
        loop = client.app.state.rlmemory.loops.get("news")
        deadline = loop.store.get_agent_decisions("news")[0]["reward"]["deadline"]
        assert loop.apply_expired_rewards(now=deadline - 1) == 0
        assert loop.apply_expired_rewards(now=deadline + 1) == 1
        client.post("/loops/news/events/e/reward", json={"value": 1.0})  # late: recorded only
    with open_store(db_path) as store:
        reward = store.get_agent_decisions("news")[0]["reward"]
        assert (reward["status"], reward["value"]) == ("defaulted", -0.5)
        assert reward["late_rewards"][0]["value"] == 1.0


def test_deferred_events_learn_only_once_activated(client: TestClient, db_path: str) -> None:
    client.post("/loops/news/rank", json=rank_body(eventId="d", deferActivation=True))
    client.post("/loops/news/events/d/reward", json={"value": 1.0})
    with open_store(db_path) as store:
        assert store.get_agent_decisions("news")[0]["reward"]["status"] == "pending"
        assert store.agent_stats("news")["rewards"] == 0
    loop = client.app.state.rlmemory.loops.get("news")
    assert loop.apply_expired_rewards(now=4e9) == 0  # never activated: never learned
    assert client.post("/loops/news/events/d/activate").status_code == 204
    with open_store(db_path) as store:
        reward = store.get_agent_decisions("news")[0]["reward"]
        assert (reward["status"], reward["value"]) == ("observed", 1.0)


def test_personalizer_alias_serves_the_configured_loop(db_path: str) -> None:
    app = create_app(db_path, sweep_seconds=0, personalizer_loop="legacy")
    with TestClient(app) as client:
        answer = client.post("/personalizer/v1.0/rank", json=rank_body(eventId="p1"))
        assert answer.status_code == 201
        assert (
            client.post("/personalizer/v1.0/events/p1/reward", json={"value": 1}).status_code == 204
        )
        assert client.post("/personalizer/v1.0/events/p1/activate").status_code == 204
        assert client.get("/loops/legacy").json()["rewards"] == 1


def test_loop_settings_put_get_list_and_delete(client: TestClient, db_path: str) -> None:
    put = client.put(
        "/loops/ads",
        json={"learner": "linucb", "learnerOptions": {"alpha": 1.0}, "rewardWaitTime": "PT5M",
              "learningMode": "online"},
    )  # fmt: skip
    assert put.status_code == 200
    settings = client.get("/loops/ads").json()["settings"]
    assert (settings["learner"], settings["rewardWaitTime"]) == ("linucb", 300.0)
    assert settings["learnerOptions"] == {"alpha": 1.0}
    client.post("/loops/ads/rank", json=rank_body(eventId="x"))
    client.post("/loops/ads/events/x/reward", json={"value": 1.0})
    assert [loop["loop"] for loop in client.get("/loops").json()["loops"]] == ["ads"]
    deleted = client.delete("/loops/ads").json()
    assert deleted["savedVersion"] == 1
    assert_error(client.get("/loops/ads"), 404, "not_found", "ads")
    with open_store(db_path) as store:
        assert store.get_arrays("ads") == {} and store.get_learner_steps("ads") == []
        assert store.list_versions("ads")[0]["version"] == 1
        assert store.count_agent_decisions("ads") == 1


def test_model_export_import_and_rollback(client: TestClient, db_path: str) -> None:
    client.put("/loops/news", json={"learner": "linucb", "learnerOptions": {"alpha": 1.0}})
    for number in range(5):
        client.post("/loops/news/rank", json=rank_body(eventId=f"e{number}"))
        client.post(f"/loops/news/events/e{number}/reward", json={"value": 1.0})
    model = client.get("/loops/news/model").json()
    assert model["format"] == "rlmemory-model" and len(model["sha256"]) == 64
    with open_store(db_path) as store:
        learned = store.get_arrays("news")
    imported = client.put("/loops/copy/model", json=model)
    assert imported.status_code == 200
    assert client.get("/loops/copy").json()["settings"]["learner"] == "linucb"
    with open_store(db_path) as store:
        copied = store.get_arrays("copy")
        assert copied.keys() == learned.keys()
        assert all(np.array_equal(copied[key], learned[key]) for key in learned)
    damaged = {**model, "sha256": "0" * 64}
    assert_error(client.put("/loops/news/model", json=damaged), 422, "validation_error", "sha256")
    client.put("/loops/greedy", json={"learner": "epsilon_greedy"})
    misfit = client.put("/loops/greedy/model", json=model)
    assert_error(misfit, 422, "validation_error", "prior_mean")
    with open_store(db_path) as store:
        assert store.list_versions("greedy") == [] and store.get_arrays("greedy") == {}
    assert_error(client.put("/loops/new/model", json=damaged), 422, "validation_error")
    assert_error(client.get("/loops/new"), 404, "not_found")
    versions = client.get("/loops/copy/versions").json()["versions"]
    rolled = client.post(f"/loops/copy/versions/{versions[0]['version']}/rollback")
    assert rolled.status_code == 200
    with open_store(db_path) as store:
        assert store.get_arrays("copy") == {}


def test_apprentice_mode_returns_the_baseline_and_graduates(client: TestClient) -> None:
    client.put("/loops/app", json={"learningMode": "apprentice"})
    for number in range(10):
        answer = client.post("/loops/app/rank", json=rank_body(eventId=f"a{number}")).json()
        assert answer["rewardActionId"] == "sports"
        assert {i["id"]: i["probability"] for i in answer["ranking"]}["sports"] == 1.0
        client.post(f"/loops/app/events/a{number}/reward", json={"value": 1.0})
    report = client.get("/loops/app").json()["apprentice"]
    assert report["events"] == 10 and report["rewardedEvents"] == 10
    assert 0.0 <= report["agreement"] <= 1.0
    assert report["estimate"]["high"] <= 1e-12  # pure baseline: the learner cannot look better
    rule = client.post(
        "/loops/app/graduate", json={"autoGraduate": {"minEvents": 5, "margin": 0.1}}
    )
    assert rule.json()["settings"]["learningMode"] == "apprentice"
    graduated = client.post("/loops/app/graduate")
    assert graduated.json()["settings"]["learningMode"] == "online"


def test_auto_graduation_switches_once_the_learner_is_estimated_better(db_path: str) -> None:
    with TestClient(create_app(db_path, sweep_seconds=0, refresh_seconds=0)) as client:
        client.put(
            "/loops/app",
            json={"learningMode": "apprentice", "apprenticeExploration": 0.5,
                  "autoGraduate": {"minEvents": 40, "margin": 0.0}},
        )  # fmt: skip
        loops = client.app.state.rlmemory.loops
        for number in range(200):
            answer = client.post("/loops/app/rank", json=rank_body(eventId=f"a{number}")).json()
            reward = 1.0 if answer["rewardActionId"] == "weather" else 0.0
            client.post(f"/loops/app/events/a{number}/reward", json={"value": reward})
            if loops.graduate_if_ready("app"):
                break
        assert client.get("/loops/app").json()["settings"]["learningMode"] == "online"


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "named"),
    [
        (
            "post",
            "/loops/news/rank",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
            "JSON",
        ),
        ("post", "/loops/news/rank", {"json": {"actions": []}}, 422, "validation_error", "actions"),
        (
            "post",
            "/loops/news/rank",
            {"json": {"contextFeatures": CONTEXT}},
            422,
            "validation_error",
            "actions",
        ),
        (
            "post",
            "/loops/news/rank",
            {"json": rank_body(excludedActions=["sports", "politics", "weather"])},
            422,
            "validation_error",
            "excludedActions",
        ),
        (
            "post",
            "/loops/news/rank",
            {"json": rank_body(excludedActions=["nope"])},
            422,
            "validation_error",
            "excludedActions",
        ),
        (
            "post",
            "/loops/news/rank",
            {"json": rank_body(actions=[{"id": "a"}, {"id": "a"}])},
            422,
            "validation_error",
            "unique",
        ),
        (
            "post",
            "/loops/news/rank",
            {
                "content": b'{"contextFeatures": [{"x": {"y": [1, {"z": 1e400}]}}], '
                b'"actions": [{"id": "a"}]}',
                "headers": {"content-type": "application/json"},
            },
            422,
            "validation_error",
            "contextFeatures",
        ),
        ("post", "/loops/bad%20name/rank", {"json": rank_body()}, 422, "validation_error", "loop"),
        (
            "post",
            "/loops/news/events/e/reward",
            {"content": b'{"value": NaN}', "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
            "value",
        ),
        (
            "post",
            "/loops/news/events/e/reward",
            {"content": b'{"value": Infinity}', "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
            "value",
        ),
        (
            "post",
            "/loops/news/events/e/reward",
            {"json": {"value": "high"}},
            422,
            "validation_error",
            "value",
        ),
        (
            "post",
            "/loops/news/events/e/reward",
            {"json": {"value": 1, "actionId": "weather"}},
            422,
            "validation_error",
            "excluded",
        ),
        (
            "post",
            "/loops/news/events/e/reward",
            {"json": {"value": 1, "actionId": "tennis"}},
            422,
            "validation_error",
            "not among",
        ),
        (
            "post",
            "/loops/news/events/unknown/reward",
            {"json": {"value": 1}},
            404,
            "not_found",
            "unknown",
        ),
        ("post", "/loops/news/events/unknown/activate", {}, 404, "not_found", "unknown"),
        ("post", "/loops/ghost/events/e/reward", {"json": {"value": 1}}, 404, "not_found", "ghost"),
        ("get", "/loops/ghost", {}, 404, "not_found", "ghost"),
        ("get", "/loops/ghost/model", {}, 404, "not_found", "ghost"),
        ("delete", "/loops/ghost", {}, 404, "not_found", "ghost"),
        (
            "put",
            "/loops/news",
            {"json": {"explorationPercentage": 1.5}},
            422,
            "validation_error",
            "explorationPercentage",
        ),
        ("put", "/loops/news", {"json": {"learner": "sarsa"}}, 422, "validation_error", "learner"),
        (
            "put",
            "/loops/news",
            {"json": {"rewardWaitTime": "ten minutes"}},
            422,
            "validation_error",
            "rewardWaitTime",
        ),
        ("put", "/loops/news", {"json": {"colour": "blue"}}, 422, "validation_error", "colour"),
        (
            "put",
            "/loops/news/model",
            {"json": {"format": "other"}},
            422,
            "validation_error",
            "format",
        ),
        ("get", "/no/such/route", {}, 404, "not_found", ""),
        ("delete", "/loops/news/rank", {}, 405, "method_not_allowed", ""),
    ],
)
def test_errors_are_json_with_the_right_status_and_nothing_is_written(
    client: TestClient, db_path: str, method: str, path: str, kwargs: dict, status: int,
    code: str, named: str,
) -> None:  # fmt: skip
    client.post("/loops/news/rank", json=rank_body(eventId="e", excludedActions=["weather"]))
    with open_store(db_path) as store:
        before = (store.count_agent_decisions("news"), store.agent_stats("news")["rewards"],
                  store.get_setting("loops", "news"))  # fmt: skip
    assert_error(getattr(client, method)(path, **kwargs), status, code, named)
    with open_store(db_path) as store:
        after = (store.count_agent_decisions("news"), store.agent_stats("news")["rewards"],
                 store.get_setting("loops", "news"))  # fmt: skip
    assert after == before


def nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        document = {"n": document}
    return document


@pytest.mark.parametrize(
    "body",
    [
        rank_body(excludedActions=["sports", "politics", "weather"]),
        rank_body(contextFeatures=[nested(40)]),
        {"contextFeatures": CONTEXT, "actions": [{"id": "a/b"}]},
        rank_body(deferActivation="later"),
    ],
)
def test_a_refused_rank_on_a_new_loop_creates_nothing(
    client: TestClient, db_path: str, body: Any
) -> None:
    response = client.post("/loops/fresh/rank", json=body)
    assert response.status_code == 422
    with open_store(db_path) as store:
        assert store.get_setting("loops", "fresh") is None
        assert store.list_agents() == []


def test_a_body_over_the_limit_is_refused_with_413(db_path: str) -> None:
    with TestClient(create_app(db_path, sweep_seconds=0, max_body_bytes=1000)) as client:
        big = rank_body(contextFeatures=[{"text": "x" * 2000}])
        assert_error(client.post("/loops/news/rank", json=big), 413, "payload_too_large", "1000")
        assert client.post("/loops/news/rank", json=rank_body()).status_code == 201


def test_the_default_limit_is_one_megabyte(client: TestClient) -> None:
    big = rank_body(contextFeatures=[{"text": "x" * 1_000_001}])
    assert_error(client.post("/loops/news/rank", json=big), 413, "payload_too_large")


# --------------------------------------------------------------------- auth
@pytest.fixture
def keys(db_path: str) -> dict[str, str]:
    with open_store(db_path) as store:
        return {"rank": new_api_key(store, "rank"), "admin": new_api_key(store, "admin")}


@pytest.fixture
def secured(db_path: str, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(db_path, sweep_seconds=0, require_api_keys=True)
    with TestClient(app) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_a_key_requests_are_401_whether_or_not_the_loop_exists(
    secured: TestClient, keys: dict[str, str]
) -> None:
    secured.post("/loops/news/rank", json=rank_body(eventId="e"), headers=bearer(keys["rank"]))
    for path in ("/loops/news", "/loops/ghost"):
        assert_error(secured.get(path), 401, "unauthorized")
        assert_error(secured.get(path, headers=bearer(keys["rank"] + "x")), 401, "unauthorized")
        assert_error(
            secured.get(path, headers={"Authorization": keys["rank"]}), 401, "unauthorized"
        )
    missing = secured.post("/loops/ghost/events/e/reward", json={"value": 1})
    existing = secured.post("/loops/news/events/e/reward", json={"value": 1})
    assert missing.json() == existing.json() and missing.status_code == 401


def test_a_rank_key_ranks_and_rewards_but_admin_routes_are_403(
    secured: TestClient, keys: dict[str, str]
) -> None:
    rank_key = bearer(keys["rank"])
    assert (
        secured.post("/loops/news/rank", json=rank_body(eventId="e"), headers=rank_key).status_code
        == 201
    )
    assert (
        secured.post("/loops/news/events/e/reward", json={"value": 1}, headers=rank_key).status_code
        == 204
    )
    assert secured.get("/loops/news", headers=rank_key).status_code == 200
    for method, path, kwargs in [
        ("put", "/loops/news", {"json": {"explorationPercentage": 0.1}}),
        ("delete", "/loops/news", {}),
        ("get", "/loops/news/model", {}),
        ("put", "/loops/news/model", {"json": {}}),
        ("post", "/loops/ghost/graduate", {}),
    ]:
        assert_error(getattr(secured, method)(path, headers=rank_key, **kwargs), 403, "forbidden")
    admin = bearer(keys["admin"])
    assert (
        secured.put("/loops/news", json={"explorationPercentage": 0.1}, headers=admin).status_code
        == 200
    )


def test_health_and_the_dashboard_page_need_no_key(secured: TestClient) -> None:
    assert secured.get("/health").json() == {"status": "ok"}
    assert "rlmemory" in secured.get("/dashboard").text
    assert_error(secured.get("/dashboard/data"), 401, "unauthorized")


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/loops/{loop}/rank" in paths and "/personalizer/v1.0/rank" in paths
    assert client.get("/docs").status_code == 200


def test_a_chunked_body_over_the_limit_is_refused_with_413(db_path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"actions": [{"id": "a"}], "contextFeatures": [{"t": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}]}'

    with TestClient(create_app(db_path, sweep_seconds=0, max_body_bytes=1000)) as client:
        response = client.post(
            "/loops/news/rank", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_error(response, 413, "payload_too_large", "1000")
    with open_store(db_path) as store:
        assert store.count_agent_decisions("news") == 0
