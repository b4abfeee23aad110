"""Browser pages: ``GET /join/NUMBER?token=TOKEN``.

A valid link of an active room gets the join page (``input#name``, ``button#join``,
``#status``); anything else gets a readable 403 page. The WebRTC part comes later: the page
calls ``window.gatewayJoin(name)``, a hook that does nothing yet.
"""

from __future__ import annotations

import asyncio
import html
import json

from aiohttp import web

from rooms.store import RoomStore

__all__ = ["STORE", "join_page"]

STORE = web.AppKey("store", RoomStore)

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:",
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
input,button{font-size:1rem;padding:.4rem .6rem}#status{margin-top:1rem;min-height:1.5em}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def forbidden_page(message: str) -> web.Response:
    body = (
        "<h1>This link does not work</h1>"
        f"<p>{html.escape(message)}</p>"
        "<p>Ask the organiser of the meeting for a new link.</p>"
    )
    return web.Response(
        text=_page("Link not valid", body), status=403, content_type="text/html", headers=_HEADERS
    )


_SCRIPT = """
(function () {
  var config = JSON.parse(document.getElementById("join-config").textContent);
  // Hook for the WebRTC client (a later step): set window.gatewayJoin = async function (name,
  // config, setStatus) {...}; it sets #status to "waiting" or "joined".
  var status = document.getElementById("status");
  function setStatus(text) { status.textContent = text; }
  document.getElementById("join-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = document.getElementById("name").value.trim();
    if (typeof window.gatewayJoin === "function") {
      window.gatewayJoin(name, config, setStatus);
    }
  });
})();
"""


def join_html(room_name: str, number: str, role: str, token: str) -> str:
    config = json.dumps({"number": number, "role": role, "token": token})
    # JSON inside <script>: escape "<" so the text cannot close the element.
    config = config.replace("<", "\\u003c")
    body = (
        f"<h1>{html.escape(room_name)}</h1>"
        f"<p>You are joining as <strong>{html.escape(role)}</strong>.</p>"
        "<form id=join-form><label for=name>Your name</label><br>"
        "<input id=name name=name autocomplete=name maxlength=100 required> "
        "<button id=join type=submit>Join</button></form>"
        "<div id=status role=status aria-live=polite></div>"
        f'<script id=join-config type="application/json">{config}</script>'
        f"<script>{_SCRIPT}</script>"
    )
    return _page(room_name, body)


async def join_page(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    token = request.query.get("token", "")
    if not token:
        return forbidden_page("The link has no token.")
    store = request.app[STORE]
    found = await asyncio.to_thread(store.find_link, number, token)
    if found is None:
        return forbidden_page("The link is not valid.")
    room, role = found
    if not room.is_active_at():
        return forbidden_page("This meeting is not open now.")
    return web.Response(
        text=join_html(room.name, room.number, role.value, token),
        content_type="text/html",
        headers=_HEADERS,
    )
