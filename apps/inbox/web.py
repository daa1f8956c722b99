"""The inbox's web application, mounted under /inbox by the composition root.

Server-rendered pages (Jinja2, autoescaped: customer text is always printed, never run), a
little JavaScript served from this package, and a server-sent event stream. Every route but
the sign-in page and the static files needs a session; every form carries the CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import asyncpg
import jinja2
import structlog
from aiohttp import web

from apps.inbox import actions, auth
from apps.inbox.agents import add_agent, generate_password
from apps.inbox.i18n import LANGUAGES, pick_language, translate
from apps.inbox.live import Hub
from apps.inbox.present import build_queue, build_transcript, view_of, window_info
from apps.inbox.profiles import Profiles
from apps.inbox.queries import q
from orchestrator.config import AppConfig, Config
from orchestrator.typedefs import CLOCK, CONFIG, DB_URL, POOL, RUNTIME

log = structlog.get_logger(__name__)

BASE = "/inbox"
HUB = web.AppKey("inbox_hub", Hub)
APP_CONFIG = web.AppKey("inbox_app_config", AppConfig)
TEMPLATES = web.AppKey("inbox_templates", jinja2.Environment)
LANG = web.RequestKey("inbox_lang", str)
SESSION = web.RequestKey("inbox_session", auth.Session)
PROFILES = web.AppKey("inbox_profiles", Profiles)
PUBLIC = ("/inbox/login", "/inbox/static/")
STREAM_PING_S = 15.0
DEMO_LOGIN = "demo"
REACTIONS = ("love",)  # the reaction the core sends by default
QUEUE_LIMIT = 200
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def create_inbox_app(
    app_config: AppConfig, config: Config, service: web.Application
) -> web.Application:
    app = web.Application(middlewares=[_security, _session])
    app[APP_CONFIG] = app_config
    app[HUB] = Hub()
    app[PROFILES] = Profiles()
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.PackageLoader("apps.inbox", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.on_startup.append(_demo_agent(config, service))
    app.on_shutdown.append(_close_hub)
    app.add_routes(
        [
            web.get("/login", login_page),
            web.post("/login", login_submit),
            web.post("/logout", logout),
            web.get("/", queue_page),
            web.get("/events", events),
            web.get("/c/{conversation_id:\\d+}", conversation_page),
            web.post("/c/{conversation_id:\\d+}/{verb}", conversation_action),
            web.get("/audit", audit_page),
            web.get("/static/{name}", static),
        ]
    )
    return app


# --- start-up and shutdown -------------------------------------------------------------


def _demo_agent(config: Config, service: web.Application) -> Callable[[web.Application], Any]:
    async def setup(app: web.Application) -> None:
        if not config.sandbox:
            return
        # Sandbox only: a demo admin with a fresh password at every start, printed once.
        password = generate_password()
        await add_agent(
            service[POOL],
            DEMO_LOGIN,
            password,
            display_name="Demo Agent",
            role="admin",
            reset=True,
            generated=True,
        )
        s = config.service
        log.info(
            "inbox",
            message=f"INBOX: http://{s.host}:{s.port}{BASE}/ sign in as "
            f"{DEMO_LOGIN} / {password} (sandbox demo agent)",
            url=f"http://{s.host}:{s.port}{BASE}/",
            login=DEMO_LOGIN,
            password=password,
        )

    return setup


async def _close_hub(app: web.Application) -> None:
    await app[HUB].close()
    await app[PROFILES].close()


# --- middlewares -------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
    return response


@web.middleware
async def _session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == BASE:
        raise web.HTTPMovedPermanently(f"{BASE}/")
    request[LANG] = pick_language(
        request.query.get("lang") or request.cookies.get("inbox_lang"),
        request.headers.get("Accept-Language"),
    )
    if request.path.startswith(PUBLIC):
        response = await handler(request)
    else:
        session = await auth.session_for(
            request.config_dict[POOL], request.cookies.get(auth.SESSION_COOKIE)
        )
        if session is None:
            if request.method in ("GET", "HEAD") and request.path != f"{BASE}/events":
                raise web.HTTPSeeOther(f"{BASE}/login?" + urlencode({"next": request.path_qs}))
            raise web.HTTPUnauthorized(text="sign in first: /inbox/login")
        if request.method == "POST":
            form = await request.post()
            if not auth.same_token(session.csrf_token, _field(form, "csrf")):
                return _render(request, "error.html", {"message": _t(request)("csrf")}, 403)
        request[SESSION] = session
        if session.agent.locale in LANGUAGES and "lang" not in request.query:
            request[LANG] = session.agent.locale
        response = await handler(request)
    if request.query.get("lang") in LANGUAGES and not response.prepared:
        response.set_cookie(
            "inbox_lang",
            request[LANG],
            path=BASE,
            samesite="Strict",
            httponly=True,
            max_age=365 * 86400,
        )
    return response


# --- helpers -------------------------------------------------------------------------------


def _t(request: web.Request) -> Callable[..., str]:
    lang = request.get(LANG, "en")

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    return t


def _field(form: Any, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _now(request: web.Request) -> datetime:
    return request.config_dict[CLOCK].now()


def _render(
    request: web.Request, name: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    env = request.app[TEMPLATES]
    session = request.get(SESSION)
    base = {
        "t": _t(request),
        "lang": request.get(LANG, "en"),
        "other_lang": "de" if request.get(LANG) == "en" else "en",
        "base": BASE,
        "agent": session.agent if session else None,
        "csrf": session.csrf_token if session else "",
        "nonce": lambda: uuid.uuid4().hex,
        "server_now": _now(request).isoformat(),
        "path": request.path,
    }
    html = env.get_template(name).render({**base, **context})
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _secure(request: web.Request) -> bool:
    return request.config_dict[CONFIG].service.public_url.startswith("https://")


def _client(request: web.Request) -> str:
    # The socket's address: a header could be forged to dodge the rate limit.
    return request.remote or "unknown"


def _safe_next(value: str | None) -> str:
    if value and value.startswith(f"{BASE}/") and not value.startswith("//"):
        return value
    return f"{BASE}/"


# --- sign-in -------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    token = auth.new_token()
    response = _render(
        request, "login.html", {"login_csrf": token, "next": request.query.get("next", "")}
    )
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        path=f"{BASE}/login",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    t = _t(request)
    next_url = _field(form, "next", 500)
    if not auth.same_token(request.cookies.get(auth.LOGIN_CSRF_COOKIE), _field(form, "csrf")):
        return _login_error(request, t("csrf"), 403, next_url)
    try:
        token, agent = await auth.sign_in(
            request.config_dict[POOL],
            _field(form, "login", 100),
            _field(form, "password", 1000),
            _client(request),
        )
    except auth.SignInRefused as exc:
        status = 429 if exc.code == "rate_limited" else 401
        log.info("inbox_sign_in_refused", reason=exc.code)
        return _login_error(request, t(exc.code), status, next_url)
    log.info("inbox_signed_in", agent=agent.login)
    response = web.HTTPSeeOther(_safe_next(next_url))
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        path=BASE,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        max_age=int(auth.SESSION_TTL.total_seconds()),
    )
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path=f"{BASE}/login")
    raise response


def _login_error(request: web.Request, message: str, status: int, next_url: str) -> web.Response:
    token = auth.new_token()
    response = _render(
        request, "login.html", {"login_csrf": token, "error": message, "next": next_url}, status
    )
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        path=f"{BASE}/login",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    await auth.sign_out(request.config_dict[POOL], request.cookies.get(auth.SESSION_COOKIE))
    response = web.HTTPSeeOther(f"{BASE}/login")
    response.del_cookie(auth.SESSION_COOKIE, path=BASE)
    raise response


# --- the queue -----------------------------------------------------------------------------


def _like(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def queue_page(request: web.Request) -> web.Response:
    session: auth.Session = request[SESSION]
    config = request.config_dict[CONFIG]
    policy = request.config_dict[RUNTIME].policy
    f = {
        "account": request.query.get("account", "")[:100],
        "state": request.query.get("state", "")[:20],
        "assignee": request.query.get("assignee", "")[:100],
        "q": request.query.get("q", "")[:200],
    }
    rows = await request.config_dict[POOL].fetch(
        q("queue"),
        session.agent.id,
        f["account"] or None,
        f["state"] if f["state"] in ("bot", "pending_human", "human") else None,
        f["assignee"] or None,
        _like(f["q"]),
        QUEUE_LIMIT,
    )
    queue = build_queue(rows, session.agent.id, policy, _t(request), config.channel_of)
    agents = await request.config_dict[POOL].fetch(q("agents_active"))
    context = {
        "queue": queue,
        "filters": f,
        "accounts": config.accounts,
        "agents": agents,
        "filter_query": urlencode({k: v for k, v in f.items() if v}),
    }
    name = "_queue.html" if request.query.get("partial") else "queue.html"
    return _render(request, name, context)


# --- a conversation ------------------------------------------------------------------------


MAX_ID = 2**63 - 1  # bigint


async def _conversation(request: web.Request) -> Any:
    conversation_id = int(request.match_info["conversation_id"])
    if conversation_id > MAX_ID:
        raise web.HTTPNotFound(text=_t(request)("no_conversation"))
    row = await request.config_dict[POOL].fetchrow(q("conversation"), conversation_id)
    if row is None:
        raise web.HTTPNotFound(text=_t(request)("no_conversation"))
    return row


async def _conversation_context(request: web.Request, conv: Any) -> dict[str, Any]:
    session: auth.Session = request[SESSION]
    agent = session.agent
    pool = request.config_dict[POOL]
    policy = request.config_dict[RUNTIME].policy
    me = request.app[APP_CONFIG]
    t = _t(request)
    view = view_of(conv)
    window = window_info(view, _now(request), policy, t)
    messages = await pool.fetch(q("transcript"), conv["id"])
    activity = await pool.fetch(q("activity"), conv["id"])
    items = build_transcript(messages, activity, conv["account_id"], policy, t)
    await pool.execute(q("mark_read"), agent.id, conv["id"])
    request.app[PROFILES].refresh(
        request.config_dict[RUNTIME], pool, me.name, conv, conv["profile_fresh"]
    )
    state = conv["state"]
    ours = view.human_app == me.name
    mine = conv["agent_id"] == agent.id
    held_by_us = state == "human" and ours
    reason = None
    if state == "bot":
        reason = t("cannot_reply_bot")
    elif not ours and state != "bot":
        reason = t("cannot_reply_elsewhere", owner=policy.owner_label(conv["owner_app"]))
    elif conv["agent_id"] is not None and not mine:
        reason = t("cannot_reply_other", name=conv["agent_name"])
    elif not mine or state != "human":
        reason = t("cannot_reply_accept")
    elif not window.can_send:
        reason = t("cannot_reply_window", reason=window.rule)
    can_reply = reason is None
    human_apps = [a.name for a in policy.apps if a.kind == "human" and a.name != me.name]
    return {
        "conv": conv,
        "channel": request.config_dict[CONFIG].channel_of(conv["account_id"]) or "instagram",
        "view": view,
        "window": window,
        "items": items,
        "notes": await pool.fetch(q("notes"), conv["id"]),
        "audit": await pool.fetch(q("audit_for_conversation"), conv["id"]),
        "agents": await pool.fetch(q("agents_active")),
        "human_apps": human_apps,
        "owner_label": policy.owner_label(conv["owner_app"])
        if conv["owner_app"]
        else policy.primary.name,
        "mine": mine,
        "can_reply": can_reply,
        "reply_reason": reason,
        "can_accept": state == "pending_human" and ours and conv["agent_id"] is None,
        "can_claim": held_by_us and conv["agent_id"] is None,
        # Taking control needs `can_take` (Meta's Page setting too); otherwise no button.
        "can_take": (state == "bot" or (state == "human" and not ours))
        and policy.app(me.name).may_take,
        "can_take_over": held_by_us
        and conv["agent_id"] is not None
        and not mine
        and agent.is_admin,
        "can_manage": (mine or agent.is_admin) and ours and state in ("human", "pending_human"),
        "reactions": REACTIONS,
        "canned": _canned(me, conv_locale=view.locale),
        "quick_replies": _quick_replies(me, conv_locale=view.locale),
        "pending_deadline": view.pending_since + policy.pending_timeout
        if state == "pending_human" and view.pending_since
        else None,
    }


def _option_texts(me: AppConfig, key: str, locale: str, limit: int) -> list[str]:
    """`options.<key>`: a list of texts, or a table of lists per locale."""
    raw = me.options.get(key)
    if isinstance(raw, dict):
        raw = raw.get(locale) or raw.get(locale.split("-")[0]) or raw.get("en")
    if isinstance(raw, list):
        return [str(x)[:limit] for x in raw if str(x).strip()][:13]
    return []


def _canned(me: AppConfig, conv_locale: str) -> list[str]:
    return _option_texts(me, "canned_responses", conv_locale, 1000)


def _quick_replies(me: AppConfig, conv_locale: str) -> list[str]:
    # Meta shows at most 13 quick replies and cuts titles after 20 characters.
    return _option_texts(me, "quick_replies", conv_locale, 20)


async def conversation_page(
    request: web.Request, *, flash: tuple[bool, str] | None = None, status: int = 200
) -> web.Response:
    conv = await _conversation(request)
    context = await _conversation_context(request, conv)
    done = request.query.get("done")
    if flash is None and done and done.startswith(("done_", "queued")):
        flash = (True, _t(request)(done))
    context["flash"] = flash
    name = "_conversation.html" if request.query.get("partial") else "conversation.html"
    return _render(request, name, context, status)


async def conversation_action(request: web.Request) -> web.Response:
    session: auth.Session = request[SESSION]
    agent = session.agent
    conv = await _conversation(request)
    form = await request.post()
    nonce = _field(form, "nonce", 64)
    rt = request.config_dict[RUNTIME]
    me = request.app[APP_CONFIG]
    services = actions.Services(
        pool=request.config_dict[POOL],
        waker=rt.waker,
        clock=request.config_dict[CLOCK],
        app=me.name,
        human_apps=tuple(a.name for a in rt.policy.apps if a.kind == "human" and a.name != me.name),
    )
    verb = request.match_info["verb"]
    if verb == "accept":
        result = await actions.accept(services, conv, agent, nonce)
    elif verb == "take":
        if conv["agent_id"] is not None and conv["agent_id"] != agent.id and agent.is_admin:
            result = await actions.transfer(services, conv, agent, f"agent:{agent.login}", nonce)
        else:
            result = await actions.take(services, conv, agent, nonce)
    elif verb == "reply":
        offered = _quick_replies(me, view_of(conv).locale) if _field(form, "quick_replies") else []
        result = await actions.reply(
            services, conv, agent, _field(form, "text"), nonce, quick_replies=offered
        )
    elif verb == "react":
        result = await actions.react(
            services, conv, agent, _field(form, "mid", 500), _field(form, "reaction", 20), nonce
        )
    elif verb == "private_reply":
        result = await actions.private_reply(
            services, conv, agent, _field(form, "comment_id", 100), _field(form, "text"), nonce
        )
    elif verb == "note":
        result = await actions.add_note(services, conv, agent, _field(form, "text"))
    elif verb == "release":
        result = await actions.release(services, conv, agent, _field(form, "reason", 200), nonce)
    elif verb == "transfer":
        result = await actions.transfer(services, conv, agent, _field(form, "target", 200), nonce)
    else:
        raise web.HTTPNotFound(text=f"no action {verb!r}")
    if result.ok:
        raise web.HTTPSeeOther(f"{BASE}/c/{conv['id']}?done={result.message_key}")
    message = _t(request)(result.message_key, **result.values)
    return await conversation_page(request, flash=(False, message), status=result.status)


# --- live updates ------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `changed` with the changed conversation ids ('*' = anything)."""
    hub = request.app[HUB]
    pool = request.config_dict[POOL]
    token = request.cookies.get(auth.SESSION_COOKIE)
    try:
        queue = await hub.subscribe(request.config_dict[DB_URL])
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("inbox_live_feed_unavailable", reason=type(exc).__name__)
        raise web.HTTPServiceUnavailable(text="live updates unavailable; retrying") from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\nevent: ready\ndata: \n\n")
        while not hub.closed.is_set():
            try:
                payload = await asyncio.wait_for(queue.get(), STREAM_PING_S)
            except TimeoutError:
                if await auth.session_for(pool, token) is None:
                    break  # signed out or expired: the stream ends with the session
                await response.write(b": ping\n\n")
                continue
            if payload.startswith("!"):
                break
            await response.write(f"event: changed\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


# --- audit -----------------------------------------------------------------------------------


async def audit_page(request: web.Request) -> web.Response:
    session: auth.Session = request[SESSION]
    if not session.agent.is_admin:
        return _render(request, "error.html", {"message": _t(request)("admins_only")}, 403)
    agent = request.query.get("agent", "")[:100] or None
    conversation = request.query.get("conversation", "")
    action = request.query.get("action", "")[:40] or None
    rows = await request.config_dict[POOL].fetch(
        q("audit_search"),
        agent,
        int(conversation) if conversation.isdigit() and int(conversation) <= MAX_ID else None,
        action,
        500,
    )
    filters = {"agent": agent or "", "conversation": conversation, "action": action or ""}
    return _render(request, "audit.html", {"rows": rows, "filters": filters})


# --- static files -------------------------------------------------------------------------

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        raise web.HTTPNotFound()
    resource = resources.files("apps.inbox") / "static" / name
    if not resource.is_file():
        raise web.HTTPNotFound()
    return web.Response(
        body=resource.read_bytes(),
        content_type=_STATIC_TYPES[suffix],
        headers={"Cache-Control": "no-cache"},
    )
