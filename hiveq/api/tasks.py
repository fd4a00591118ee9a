"""Task routes: submit, read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ValidationError

from hiveq.aggregate import stalled_tasks, summary
from hiveq.api.deps import get_archive, get_broker, require_token, who_asked
from hiveq.api.errors import from_pydantic
from hiveq.api.schemas import errors
from hiveq.archive import read
from hiveq.archive.read import Archive
from hiveq.contract.errors import UnsupportedMediaType, ValidationFailed
from hiveq.contract.jsonrules import parse_json
from hiveq.contract.models import TaskRequest
from hiveq.contract.states import TaskStatus
from hiveq.contract.views import CancelResponse, ScheduleRequest, SubmitResponse, TaskList, TaskView
from hiveq.plan import PLANNERS
from hiveq.queue import cancel, inspect
from hiveq.queue.broker import Broker
from hiveq.submit import submit_response, submit_task

M = TypeVar("M", bound=BaseModel)

router = APIRouter(tags=["tasks"], dependencies=[Depends(require_token)])
BrokerDep = Annotated[Broker, Depends(get_broker)]
ArchiveDep = Annotated[Archive | None, Depends(get_archive)]

# curl's `-d` without `-H` sends application/x-www-form-urlencoded, and the seed command
# (`curl -X POST localhost:8001/tasks -d '{...}'`) must work as is: a JSON body under that type, or
# under none, is read as JSON. But only from a client that is not a browser: an HTML form or a
# fetch on any web page can send that type to a loopback API without a CORS preflight, and a
# browser marks every such request with Origin or Sec-Fetch-* headers, which curl, the SDK and the
# CLI never send. Browsers must send a JSON type (the dashboard does). The Origin check in
# hiveq/api/guard.py refuses other origins before this runs; this keeps form posts out even from
# an allowed origin.
FORM_TYPE = "application/x-www-form-urlencoded"
BROWSER_HEADERS = ("origin", "sec-fetch-site", "sec-fetch-mode")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def from_browser(request: Request) -> bool:
    return any(h in request.headers for h in BROWSER_HEADERS)


async def json_body(request: Request, *, empty: Any = ...) -> Any:
    """The request's JSON body, under the media-type rule above; `empty`: what an empty body
    stands for (default: an empty body is invalid JSON)."""
    media = _media_type(request)
    is_json = media == "application/json" or media.endswith("+json")
    if not is_json and (media not in (FORM_TYPE, "") or from_browser(request)):
        raise UnsupportedMediaType(media)
    raw = await request.body()
    if empty is not ... and not raw.strip():
        return empty
    return parse_json(raw)


async def read_model(request: Request, model: type[M]) -> M:
    """The request's JSON object body as `model`; a 422 naming the field when it is not one."""
    data = await json_body(request)
    if not isinstance(data, dict):
        raise ValidationFailed("body", f"must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc.errors()) from None


async def read_task_request(request: Request) -> TaskRequest:
    return await read_model(request, TaskRequest)


@router.post(
    "/tasks",
    status_code=201,
    response_model=SubmitResponse,
    responses={
        200: {"model": SubmitResponse, "description": "idempotent replay: the earlier task"},
        **errors(401, 403, 409, 413, 415, 421, 422, 503, 507),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskRequest"}}},
        }
    },
)
async def create_task(
    request: Request,
    response: Response,
    b: BrokerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="retries with the same key return the same task",
            json_schema_extra={"pattern": "^[!-~]{1,200}$"},
        ),
    ] = None,
) -> SubmitResponse:
    """Plan a task into subtasks and queue them atomically. A repeated `Idempotency-Key` answers
    200 with the earlier task instead of creating a second one."""
    req = await read_task_request(request)
    done = await submit_task(b, req, idempotency_key=idempotency_key)
    answer = await submit_response(b, done, req.priority)
    if done.duplicate:
        response.status_code = 200
    response.headers["Location"] = answer.links.self
    return answer


@router.get("/tasks", response_model=TaskList, responses=errors(401, 422, 503))
async def list_tasks(
    b: BrokerDep,
    archive: ArchiveDep,
    status: TaskStatus | None = None,
    offset: Annotated[
        int, Query(ge=0, le=1_000_000, description="tasks to skip (or page with `cursor`)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    q: Annotated[
        str | None,
        Query(max_length=200, description="only tasks whose description contains this (any case)"),
    ] = None,
    agent: Annotated[
        str | None, Query(max_length=64, description="only tasks with a subtask for this agent")
    ] = None,
    since: Annotated[int | None, Query(ge=0, description="created at or after (ms since the epoch)")] = None,
    until: Annotated[int | None, Query(ge=0, description="created before (ms since the epoch)")] = None,
    meta: Annotated[
        list[str] | None, Query(max_length=200, description="metadata key:value (repeatable; all must match)")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=100, description="the `next_cursor` of the previous page")
    ] = None,
) -> TaskList:
    """Tasks, newest first; `total` counts the tasks that match (every task without a filter).

    Without an archive, a search (`q`, a case-insensitive substring of the description) reads at
    most the newest 5,000 tasks and 8 MB of descriptions; past that bound `total_exact` is false
    and `total` counts the matches found (a lower bound). With an archive (HIVEQ_ARCHIVE_URL) the
    list covers its history too, with the same `q`; page with `cursor` (docs/archive.md).
    """
    stalled = await stalled_tasks(b)
    if archive is None and cursor is None and not (agent or since or until or meta):
        page = await inspect.list_tasks(b, status, offset, limit, q=q or None)  # Redis alone, as before
        items = [summary(t, t.id in stalled) for t in page.items]
        return TaskList(total=page.total, total_exact=page.total_exact, items=items)
    if offset and cursor:
        raise ValidationFailed("offset", "goes with no `cursor`: page with one or the other")
    f = read.parse_filter(status, q, agent, since, until, meta or ())
    found = await read.list_tasks(b, archive, f, cursor=cursor, limit=limit, offset=offset)
    return TaskList(
        total=found.total,
        items=[summary(t, t.id in stalled) for t in found.items],
        next_cursor=found.next_cursor,
        total_exact=found.total_exact,
    )


@router.get("/tasks/{task_id}", response_model=TaskView, responses=errors(401, 404, 503))
async def get_task(task_id: str, b: BrokerDep, archive: ArchiveDep) -> TaskView:
    """Status, progress, each subtask with its state, attempts, worker, result or error."""
    return await read.task_view(b, archive, task_id)


@router.post("/tasks/{task_id}/cancel", response_model=CancelResponse, responses=errors(401, 404, 409, 503))
async def cancel_task(task_id: str, request: Request, b: BrokerDep) -> CancelResponse:
    """Cancel every unfinished subtask (running ones lose their lease and their agents are stopped
    at once; suspended ones and spawned children too). 409 when already finished."""
    n = await cancel.cancel_task(b, task_id, reason=f"cancelled by {who_asked(request, b)}")
    return CancelResponse(task_id=task_id, cancelled=n)


def add_request_schema(app: FastAPI) -> None:
    """`POST /tasks` reads its body by hand (for 415 and clear errors), so FastAPI does not see the
    model; put `TaskRequest` into the OpenAPI components so /docs and fuzzers know the body. The
    planner is declared as an enum of the planners registered when the schema is first built."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        body = TaskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        planner = body["properties"]["planner"]
        planner["anyOf"] = [{"type": "string", "enum": sorted(PLANNERS)}, {"type": "null"}]
        components["TaskRequest"] = body
        spec = ScheduleRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        spec["properties"]["task"] = {"$ref": "#/components/schemas/TaskRequest"}
        components["ScheduleRequest"] = spec
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
