"""The HTTP decision service: FastAPI routes over learning loops (extra ``rlmemory[serve]``).

:func:`create_app` returns the ASGI app; ``rlmemory serve`` runs it with uvicorn. Every
route is a thin call into :mod:`rlmemory.service.loops`; errors are JSON
``{"error": code, "detail": "one line"}`` with the status saying what went wrong
(malformed JSON 400, missing/invalid key 401, insufficient scope 403, unknown loop or
event 404, body over the limit 413, bad values 422 naming the field, store busy 503).
OpenAPI is at ``/docs``. The store is opened once per process, when the app starts.

Rank, reward and activate (the hot path) and the key check are ``async`` routes that call
the store directly on the event loop: one worker's store calls are serialised anyway (one
connection, one lock), so a thread hop per request would add latency and no parallelism.
Several workers (``--workers``) are how the service uses several cores.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from rlmemory.errors import StoreBusyError, StoreError
from rlmemory.service.keys import check_api_key
from rlmemory.service.loops import (
    LoopRegistry,
    RequestError,
    UnknownEventError,
    UnknownLoopError,
    apprentice_report,
)
from rlmemory.service.settings import SettingsError, check_loop_name, settings_from_request

try:
    from fastapi import Body, Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"the rlmemory service needs FastAPI and uvicorn ({missing}); install them with "
        "pip install 'rlmemory[serve]'"
    ) from None

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_000_000
#: How often the sweeper checks auto-graduation (it reads each apprentice loop's log).
GRADUATION_CHECK_SECONDS = 10.0
#: Environment variables through which ``rlmemory serve`` configures worker processes.
ENVIRONMENT_PREFIX = "RLMEMORY_SERVE_"

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "store_busy",
}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RankableAction(BaseModel):
    """One candidate action: its id and (optional) feature dictionaries."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=256)
    features: list[dict[str, Any]] | dict[str, Any] | None = None


class RankRequest(_Body):
    """Personalizer's rank request."""

    model_config = ConfigDict(extra="ignore")
    contextFeatures: list[dict[str, Any]] | dict[str, Any] | None = None
    actions: list[RankableAction] = Field(min_length=1)
    excludedActions: list[str] | None = None
    eventId: str | None = Field(default=None, min_length=1, max_length=200)
    deferActivation: bool = False


class RewardRequest(BaseModel):
    """A reward: ``value``, and optionally the ``actionId`` it is for (checked)."""

    model_config = ConfigDict(extra="ignore")
    value: float
    actionId: str | None = None


class GraduateRequest(_Body):
    """``POST /loops/{loop}/graduate``: at once (no body), or by rule (``autoGraduate``)."""

    autoGraduate: dict[str, Any] | None = None


# ------------------------------------------------------------------------ body limit
class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413, unread.

    It also names the worker process in an ``X-Rlmemory-Worker`` header (its pid), so
    clients and tests can see which worker answered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.worker_header = (b"x-rlmemory-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_naming_the_worker(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.worker_header]}
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send_naming_the_worker)
            return
        # Read the whole body first (it is at most max_bytes) so that a chunked upload
        # over the limit is refused before the app sees any of it.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send_naming_the_worker)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send_naming_the_worker)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body is larger than {limit} bytes")


def _error(status: int, detail: str, code: str | None = None) -> JSONResponse:
    one_line = " ".join(str(detail).split())
    return JSONResponse(
        {"error": code or _STATUS_CODES.get(status, "error"), "detail": one_line},
        status_code=status,
    )


def _validation_detail(error: RequestValidationError) -> tuple[int, str, str]:
    problems = error.errors()
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":
        return 400, "malformed_json", f"the body is not valid JSON: {first.get('msg', '')}"
    if isinstance(error.body, bytes | str) and error.body:
        try:
            json.loads(error.body)
        except ValueError as problem:
            return 400, "malformed_json", f"the body is not valid JSON: {problem}"
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    name = ".".join(location) or "body"
    return 422, "validation_error", f"{name}: {first.get('msg', 'invalid value')}"


# ---------------------------------------------------------------------------- app
class ServiceState:
    """What one process of the service holds: the store, its loops, the sweeper."""

    def __init__(
        self,
        store_location: Any,
        *,
        require_api_keys: bool,
        personalizer_loop: str,
        refresh_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self.store_location = store_location
        self.require_api_keys = require_api_keys
        self.personalizer_loop = check_loop_name(personalizer_loop)
        self.refresh_seconds = refresh_seconds
        self.sweep_seconds = sweep_seconds
        self.store: Any = None
        self.loops: LoopRegistry | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def open(self) -> None:
        from rlmemory.store import open_store

        store = self.store_location
        self.store = open_store(store) if isinstance(store, str | os.PathLike) else store
        self.loops = LoopRegistry(self.store, refresh_seconds=self.refresh_seconds)
        if self.sweep_seconds > 0:
            self._sweeper = threading.Thread(target=self._sweep, name="rlmemory-sweeper")
            self._sweeper.daemon = True
            self._sweeper.start()

    def _sweep(self) -> None:
        """Close passed reward windows and check auto-graduation, every ``sweep_seconds``."""
        last_graduation_check = 0.0
        while not self._stop.wait(self.sweep_seconds):
            loops = self.loops
            if loops is None:
                continue
            try:
                loops.apply_expired_rewards()
                now = time.monotonic()
                if now - last_graduation_check >= GRADUATION_CHECK_SECONDS:
                    last_graduation_check = now
                    for name in loops.names():
                        loops.graduate_if_ready(name)
            except Exception:  # keep sweeping; the next request reports store problems
                logger.exception("rlmemory service: closing reward windows failed")

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        if self.store is not None and isinstance(self.store_location, str | os.PathLike):
            self.store.close()


def create_app(
    store_location: Any,
    *,
    require_api_keys: bool = False,
    personalizer_loop: str = "default",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    refresh_seconds: float = 0.5,
    sweep_seconds: float = 1.0,
) -> Any:
    """The ASGI app serving the loops of the store at ``store_location``.

    ``store_location`` is anything :func:`rlmemory.store.open_store` opens (a SQLite
    path, a PostgreSQL URL, ``files://folder``) or an open store. With
    ``require_api_keys`` every route but ``/health``, ``/docs`` and the dashboard page
    needs ``Authorization: Bearer KEY`` (``rlmemory keys api new``). The Personalizer
    alias routes ``/personalizer/v1.0/...`` serve loop ``personalizer_loop``.
    ``refresh_seconds`` bounds how stale the statistics a rank uses may be when other
    processes learn; ``sweep_seconds`` is how often passed reward windows are closed
    in the background (0: only when requests arrive).
    """
    state = ServiceState(
        store_location,
        require_api_keys=require_api_keys,
        personalizer_loop=personalizer_loop,
        refresh_seconds=refresh_seconds,
        sweep_seconds=sweep_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.open()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="rlmemory decision service",
        summary="Rank actions, learn from rewards; Personalizer-compatible.",
        version="1",
        lifespan=lifespan,
    )
    app.state.rlmemory = state
    _install_error_handlers(app)
    _install_routes(app, state)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        status, code, detail = _validation_detail(error)
        return _error(status, detail, code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestError)
    @app.exception_handler(SettingsError)
    async def bad_value(_request: Request, error: Exception) -> JSONResponse:
        return _error(422, str(error))

    @app.exception_handler(UnknownLoopError)
    @app.exception_handler(UnknownEventError)
    async def unknown(_request: Request, error: Exception) -> JSONResponse:
        return _error(404, error.args[0] if error.args else "not found")

    @app.exception_handler(StoreBusyError)
    async def busy(_request: Request, error: Exception) -> JSONResponse:
        return _error(503, "the store is busy; retry the request")

    @app.exception_handler(StoreError)
    async def store_problem(_request: Request, error: Exception) -> JSONResponse:
        logger.error("rlmemory service: store error: %s", error)
        return _error(500, "the store reported an error; see the service log")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("rlmemory service: unexpected error", exc_info=error)
        return _error(500, "unexpected error; see the service log")


def _install_routes(app: FastAPI, state: ServiceState) -> None:
    def registry() -> LoopRegistry:
        assert state.loops is not None
        return state.loops

    def require(scope: str) -> Callable[[Request], Awaitable[None]]:
        # async, so that FastAPI runs it on the event loop instead of a thread.
        async def check(request: Request) -> None:
            if not state.require_api_keys:
                return
            header = request.headers.get("authorization", "")
            kind, _, key = header.partition(" ")
            found = check_api_key(state.store, key.strip()) if kind.lower() == "bearer" else None
            if found is None:
                raise StarletteHTTPException(401, "a valid API key is required (Bearer)")
            if scope == "admin" and found != "admin":
                raise StarletteHTTPException(403, "this key's scope does not allow this")

        return check

    # Without keys there is nothing to check: no dependency, so FastAPI solves none per request.
    rank_scope = [Depends(require("rank"))] if state.require_api_keys else []
    admin_scope = [Depends(require("admin"))] if state.require_api_keys else []

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers and its store is open."""
        return {"status": "ok"}

    @app.get("/loops", tags=["loops"], dependencies=rank_scope)
    def list_loops() -> dict[str, Any]:
        """Every loop with its settings and live figures."""
        loops = registry()
        return {"loops": [loops.get(name).stats() for name in loops.names()]}

    @app.get("/loops/{loop}", tags=["loops"], dependencies=rank_scope)
    def get_loop(loop: str) -> dict[str, Any]:
        """One loop: settings, ranks, rewards, mean reward, pending events, current
        version, and in apprentice mode the comparison with the baseline (which reads the
        loop's whole log; null in online mode)."""
        found = registry().get(check_loop_name(loop))
        apprentice = found.settings.learning_mode == "apprentice"
        report = apprentice_report(state.store, loop) if apprentice else None
        return {**found.stats(), "apprentice": report}

    @app.put("/loops/{loop}", tags=["loops"], dependencies=admin_scope)
    def put_loop(loop: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Create or change a loop's settings (fields not given keep their value)."""
        loops = registry()
        settings = settings_from_request(body, loops.settings_of(check_loop_name(loop)))
        return loops.put(loop, settings).stats()

    @app.delete("/loops/{loop}", tags=["loops"], dependencies=admin_scope)
    def delete_loop(loop: str) -> dict[str, Any]:
        """Delete a loop's settings and learned state; its versions and history stay."""
        version = registry().delete(check_loop_name(loop))
        return {"deleted": loop, "savedVersion": version}

    def rank_on(loop: str, body: RankRequest) -> JSONResponse:
        answer = registry().rank(
            loop,
            body.contextFeatures,
            [action.model_dump() for action in body.actions],
            body.excludedActions,
            body.eventId,
            body.deferActivation,
        )
        return JSONResponse(answer.to_api(), status_code=201)

    def reward_on(loop: str, event_id: str, body: RewardRequest) -> Response:
        registry().get(check_loop_name(loop)).reward(event_id, body.value, body.actionId)
        return Response(status_code=204)

    def activate_on(loop: str, event_id: str) -> Response:
        registry().get(check_loop_name(loop)).activate(event_id)
        return Response(status_code=204)

    @app.post("/loops/{loop}/rank", tags=["rank"], dependencies=rank_scope, status_code=201)
    async def rank(loop: str, body: RankRequest) -> JSONResponse:
        """Rank the actions for the context; the loop is created with defaults if new."""
        return rank_on(loop, body)

    @app.post(
        "/loops/{loop}/events/{event_id}/reward",
        tags=["rank"],
        dependencies=rank_scope,
        status_code=204,
    )
    async def reward(loop: str, event_id: str, body: RewardRequest) -> Response:
        """Report the reward of an event (aggregated within the loop's reward wait)."""
        return reward_on(loop, event_id, body)

    @app.post(
        "/loops/{loop}/events/{event_id}/activate",
        tags=["rank"],
        dependencies=rank_scope,
        status_code=204,
    )
    async def activate(loop: str, event_id: str) -> Response:
        """Activate an event ranked with ``deferActivation``."""
        return activate_on(loop, event_id)

    @app.post("/personalizer/v1.0/rank", tags=["personalizer"], dependencies=rank_scope)
    async def personalizer_rank(body: RankRequest) -> JSONResponse:
        """Personalizer's Rank, on the loop named by ``--personalizer-loop``."""
        return rank_on(state.personalizer_loop, body)

    @app.post(
        "/personalizer/v1.0/events/{event_id}/reward",
        tags=["personalizer"],
        dependencies=rank_scope,
        status_code=204,
    )
    async def personalizer_reward(event_id: str, body: RewardRequest) -> Response:
        """Personalizer's Reward."""
        return reward_on(state.personalizer_loop, event_id, body)

    @app.post(
        "/personalizer/v1.0/events/{event_id}/activate",
        tags=["personalizer"],
        dependencies=rank_scope,
        status_code=204,
    )
    async def personalizer_activate(event_id: str) -> Response:
        """Personalizer's Activate."""
        return activate_on(state.personalizer_loop, event_id)

    @app.post("/loops/{loop}/graduate", tags=["loops"], dependencies=admin_scope)
    def graduate(loop: str, body: GraduateRequest | None = None) -> dict[str, Any]:
        """Switch an apprentice loop to online now, or set the rule that will."""
        loops = registry()
        if body is not None and body.autoGraduate is not None:
            settings = settings_from_request(
                {"autoGraduate": body.autoGraduate}, loops.settings_of(check_loop_name(loop))
            )
            loops.put(loop, settings)
            loops.graduate_if_ready(loop)
            return loops.get(loop).stats()
        return loops.graduate(check_loop_name(loop)).stats()

    @app.get("/loops/{loop}/model", tags=["models"], dependencies=admin_scope)
    def get_model(loop: str) -> JSONResponse:
        """The loop's learned model as a versioned file with a checksum."""
        from rlmemory.service.models import export_model

        registry().get(check_loop_name(loop))
        return JSONResponse(export_model(registry(), loop))

    @app.put("/loops/{loop}/model", tags=["models"], dependencies=admin_scope)
    def put_model(loop: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Import a model file as the loop's newest version."""
        from rlmemory.service.models import import_model

        return {"loop": loop, "version": import_model(registry(), check_loop_name(loop), body)}

    @app.get("/loops/{loop}/versions", tags=["models"], dependencies=rank_scope)
    def versions(loop: str) -> dict[str, Any]:
        """The loop's versions, oldest first."""
        registry().get(check_loop_name(loop))
        return {"versions": state.store.list_versions(loop)}

    @app.post(
        "/loops/{loop}/versions/{version}/rollback", tags=["models"], dependencies=admin_scope
    )
    def rollback(loop: str, version: int) -> dict[str, Any]:
        """Restore a version's learned state (kept as a new version)."""
        from rlmemory.ops.versions import rollback as restore

        found = registry().get(check_loop_name(loop))
        try:
            outcome = restore(state.store, loop, version)
        except LookupError as error:
            raise UnknownEventError(str(error)) from None
        found._forget_learners()
        return {"loop": loop, "restored": outcome.restored, "version": outcome.new_version}

    @app.get("/dashboard", tags=["dashboard"], response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        """The live dashboard page (no network needed; it polls ``/dashboard/data``)."""
        page = Path(__file__).with_name("dashboard.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    @app.get("/dashboard/data", tags=["dashboard"], dependencies=rank_scope)
    def dashboard_data() -> dict[str, Any]:
        """Figures the dashboard draws, for every loop."""
        from rlmemory.service.dashboard import dashboard_data as collect

        return collect(registry())


def app_from_environment() -> Any:
    """The app configured by ``RLMEMORY_SERVE_*`` variables (how ``rlmemory serve``
    hands its options to uvicorn worker processes)."""
    env = os.environ
    options = json.loads(env.get(ENVIRONMENT_PREFIX + "OPTIONS", "{}"))
    return create_app(env[ENVIRONMENT_PREFIX + "DB"], **options)
