"""Limit routes (docs/limits.md): `PUT /limits/{key}` sets a rule (JSON body with the fields of
`hiveq limits set`), `GET /limits` lists the rules with live usage, `GET`/`DELETE /limits/{key}`.
A key ending in `*` is a pattern; a key with `/` in it is sent as is (the path takes the rest)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from hiveq.api.deps import get_broker, require_token
from hiveq.api.schemas import errors
from hiveq.api.tasks import read_model
from hiveq.contract.errors import ValidationFailed
from hiveq.contract.limit_rules import LimitRule, LimitView, check_limit_key
from hiveq.queue import limits
from hiveq.queue.broker import Broker

router = APIRouter(tags=["limits"], dependencies=[Depends(require_token)])
BrokerDep = Annotated[Broker, Depends(get_broker)]
RULE_SCHEMA = LimitRule.model_json_schema()


def _key(key: str) -> str:
    try:
        return check_limit_key(key)
    except ValueError as exc:
        raise ValidationFailed("key", str(exc)) from None


@router.get("/limits", response_model=list[LimitView], responses=errors(401, 503))
async def list_limits(b: BrokerDep) -> list[LimitView]:
    """Every rule with the live usage of each key under it (in use, holders, starts, tokens,
    budget spent, throttled total, cool-down)."""
    return await limits.views(b)


@router.put(
    "/limits/{key:path}",
    response_model=LimitView,
    responses=errors(401, 404, 415, 422, 503),  # 404: a key the path cannot carry (a newline)
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": RULE_SCHEMA}}}},
)
async def put_limit(key: str, request: Request, b: BrokerDep) -> LimitView:
    """Create or replace the rule for `key`, e.g. `{"concurrency": 2, "rate": "10/s"}`; it takes
    effect on the next claim (waiting workers are woken)."""
    key = _key(key)
    rule = await read_model(request, LimitRule)
    await limits.set_limit(b, key, rule)
    return await limits.view(b, key, rule)


@router.get("/limits/{key:path}", response_model=LimitView, responses=errors(401, 404, 422, 503))
async def get_limit(key: str, b: BrokerDep) -> LimitView:
    """One rule with the live usage of each key under it."""
    return await limits.view(b, _key(key))


@router.delete("/limits/{key:path}", status_code=204, responses=errors(401, 404, 422, 503))
async def delete_limit(key: str, b: BrokerDep) -> None:
    """Remove the rule (the counters of its keys are kept: budgets spent still count if it
    comes back)."""
    await limits.remove_limit(b, _key(key))
