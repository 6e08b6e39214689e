"""The service through HTTP, on a real PostgreSQL database per test (sam_db's pytest plugin)."""

from __future__ import annotations

import httpx


async def test_a_session_and_its_events_are_recorded(client: httpx.AsyncClient) -> None:
    workflow = await client.post("/workflows", json={"id": "wf-review", "name": "Code review"})
    assert workflow.status_code == 201
    session = await client.post(
        "/sessions", json={"workflow_id": "wf-review", "agent": "claude-code", "model": "opus"}
    )
    assert session.status_code == 201
    sid = session.json()["id"]
    for event in ({"event_type": "tool_call", "payload": {"tool": "grep"}}, {"event_type": "stop"}):
        assert (await client.post(f"/sessions/{sid}/events", json=event)).status_code == 201

    got = (await client.get(f"/sessions/{sid}")).json()
    assert got["workflow_id"] == "wf-review" and got["status"] == "running"
    assert got["events"] == [
        {"event_type": "tool_call", "payload": {"tool": "grep"}},
        {"event_type": "stop", "payload": {}},
    ]


async def test_ending_a_session_sets_its_status_and_end_time(client: httpx.AsyncClient) -> None:
    sid = (await client.post("/sessions", json={"agent": "codex"})).json()["id"]
    ended = await client.post(f"/sessions/{sid}/end", json={"status": "completed"})
    assert ended.json() == {"id": sid, "status": "completed"}
    got = (await client.get(f"/sessions/{sid}")).json()
    assert got["status"] == "completed" and got["ended_at"] is not None
    again = await client.post(f"/sessions/{sid}/end", json={"status": "failed"})
    assert again.status_code == 404  # only a running session can end


async def test_an_event_for_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/sessions/nope/events", json={"event_type": "tool_call"})
    assert response.status_code == 404


async def test_a_value_the_schema_rejects_is_422(client: httpx.AsyncClient) -> None:
    sid = (await client.post("/sessions", json={})).json()["id"]
    empty_type = await client.post(f"/sessions/{sid}/events", json={"event_type": ""})
    assert empty_type.status_code == 422  # session_events_event_type_check


async def test_remembered_text_is_recalled(client: httpx.AsyncClient) -> None:
    sid = (await client.post("/sessions", json={"agent": "claude-code"})).json()["id"]
    stored = await client.post(
        "/remember",
        json={
            "text": "The deploy failed because the DB was read-only",
            "metadata": {"kind": "incident"},
            "session_id": sid,
        },
    )
    assert stored.status_code == 201
    await client.post("/remember", json={"text": "Lunch is at noon", "metadata": {"kind": "note"}})

    hits = (
        await client.post(
            "/recall",
            json={"query": "The deploy failed because the DB was read-only", "k": 2},
        )
    ).json()
    assert hits[0]["content"] == "The deploy failed because the DB was read-only"
    assert hits[0]["id"] == stored.json()["id"]
    assert abs(hits[0]["similarity"] - 1.0) < 1e-6


async def test_recall_filters_on_metadata(client: httpx.AsyncClient) -> None:
    for text, kind in (("disk full on db-1", "incident"), ("standup moved", "note")):
        await client.post("/remember", json={"text": text, "metadata": {"kind": kind}})
    hits = (
        await client.post("/recall", json={"query": "anything", "k": 5, "filter": {"kind": "note"}})
    ).json()
    assert [h["content"] for h in hits] == ["standup moved"]


async def test_an_empty_memory_is_rejected_with_the_stores_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/remember", json={"text": ""})
    assert response.status_code == 422
    assert "empty" in response.json()["detail"]
