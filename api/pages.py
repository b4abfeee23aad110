"""Browser pages: ``GET /join/NUMBER?token=TOKEN`` and its script.

A valid link of an active room gets the join page (``input#name``, ``button#join``,
``#status``, and the call controls); anything else gets a readable 403 page. The page is plain
HTML in French or English (first pick: the ``Accept-Language`` header; the script then follows
``navigator.language`` or the visitor's fr/en switch). Its client, ``api/static/join.js``
(served by :func:`join_script` at ``/join/static/join.js``), speaks the WebSocket signalling of
``docs/signalling.md`` and reads its settings and texts from the page's
``<script id=join-config type="application/json">`` block.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
from pathlib import Path

from aiohttp import web

from rooms.store import RoomStore

__all__ = [
    "JOIN_SCRIPT_PATH",
    "LANGS",
    "STORE",
    "TEXTS",
    "forbidden_page",
    "join_html",
    "join_page",
    "join_script",
    "pick_lang",
]

STORE = web.AppKey("store", RoomStore)

#: Where the page loads its client from (the route of :func:`join_script`).
JOIN_SCRIPT_PATH = "/join/static/join.js"

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:",
}

_STYLE = """
[hidden]{display:none!important}
body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}
input,button,select{font-size:1rem;padding:.4rem .6rem}
button[aria-pressed=true]{background:#234;color:#fff}
#lang-switch{text-align:right}
#status{margin-top:1rem;min-height:1.5em;font-family:monospace;color:#555}
#message:not(:empty){margin:1rem 0;padding:.5rem .75rem;border:1px solid #b00;color:#800;background:#fee}
#controls{margin-top:1rem}#controls>*{margin:.25rem .25rem .25rem 0}
#participants{padding-left:1.2rem}#participants li{margin:.2rem 0}
#participants .talking{font-weight:bold;color:#063}
#participants .actions button,#moderation button{font-size:.85rem;padding:.15rem .4rem;margin:0 0 0 .3rem}
#moderation{margin:.25rem 0}#moderation button{margin:0 .3rem 0 0}
video#local{display:block;width:12rem;max-width:100%;margin-top:.5rem;background:#000}
"""

LANGS = ("en", "fr")

#: Every text the page and its script show, by language. ``err_CODE`` is the text of an
#: ``error`` code (docs/signalling.md) or of a client-side failure.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "joining_as": "You are joining as",
        "role_organiser": "organiser",
        "role_guest": "guest",
        "role_spectator": "spectator",
        "spectator_note": "This link is for listening: no microphone is needed.",
        "name_label": "Your name",
        "join": "Join",
        "controls": "Microphone and camera",
        "mic_label": "Microphone",
        "mic_default": "Default microphone",
        "mute": "Mute",
        "camera": "Camera preview",
        "leave": "Leave",
        "participants": "Participants",
        "you": "you",
        "kind_phone": "phone",
        "kind_sip": "room system (SIP)",
        "kind_browser": "browser",
        "muted": "muted",
        "talking": "speaking",
        "in_waiting_room": "in the waiting room",
        "status_connecting": "Connecting…",
        "status_waiting": "You are in the waiting room: an organiser will let you in.",
        "status_joined": "You are in the meeting.",
        "status_left": "You left the meeting.",
        "status_reconnecting": "Reconnecting…",
        "err_bad_message": "The gateway did not understand this page. Reload it and try again.",
        "err_not_authenticated": "The page took too long to join. Reload it and try again.",
        "err_invalid_link": "This link does not work. Ask the organiser for a new link.",
        "err_room_closed": "This meeting is not open now.",
        "err_too_big": "The page sent too much data. Reload it and try again.",
        "err_too_many": "The page sent too many messages. Reload it and try again.",
        "err_removed": "An organiser removed you from the meeting.",
        "err_ended": "The meeting has ended.",
        "err_refused": "An organiser did not let you in.",
        "err_unavailable": "The gateway cannot take you now. Try again in a few minutes.",
        "err_mic_blocked": "The browser did not allow the microphone. Allow it and join again.",
        "err_muted_by_organiser": "The organiser muted your microphone.",
        "err_unmuted_by_organiser": "The organiser unmuted your microphone.",
        "err_asked_to_unmute": "The organiser asks you to speak: unmute your microphone.",
        "err_mic_missing": "No usable microphone was found. Plug one in and join again.",
        "err_camera_blocked": "The browser did not allow the camera.",
        "err_camera_missing": "No usable camera was found.",
        "err_connection_lost": "The connection was lost. Reconnecting…",
        "err_restarting": "The gateway is restarting. Reconnecting…",
        "err_draining": "The gateway restarts soon; this page will reconnect by itself.",
        "err_name_missing": "Enter your name (1 to 100 characters).",
        "err_unsupported": "This browser cannot join calls. Use a current Chrome or Firefox.",
        "err_moderation_failed": "That did not work.",
        "moderation": "Moderation",
        "mod_admit_all": "Admit everyone waiting",
        "mod_mute_all": "Mute everyone",
        "mod_admit": "Admit",
        "mod_admit_aria": "Admit {name}",
        "mod_refuse": "Refuse",
        "mod_refuse_aria": "Refuse {name}",
        "mod_mute": "Mute",
        "mod_mute_aria": "Mute {name}",
        "mod_unmute": "Unmute",
        "mod_unmute_aria": "Unmute {name}",
        "mod_ask_unmute": "Ask to unmute",
        "mod_ask_unmute_aria": "Ask to unmute: {name}",
        "mod_remove": "Remove",
        "mod_remove_aria": "Remove {name}",
    },
    "fr": {
        "joining_as": "Vous participez en tant que",
        "role_organiser": "organisateur",
        "role_guest": "invité",
        "role_spectator": "spectateur",
        "spectator_note": "Ce lien permet d’écouter : aucun micro n’est nécessaire.",
        "name_label": "Votre nom",
        "join": "Rejoindre",
        "controls": "Micro et caméra",
        "mic_label": "Micro",
        "mic_default": "Micro par défaut",
        "mute": "Couper le micro",
        "camera": "Aperçu de la caméra",
        "leave": "Quitter",
        "participants": "Participants",
        "you": "vous",
        "kind_phone": "téléphone",
        "kind_sip": "système de salle (SIP)",
        "kind_browser": "navigateur",
        "muted": "micro coupé",
        "talking": "parle",
        "in_waiting_room": "en salle d’attente",
        "status_connecting": "Connexion…",
        "status_waiting": "Vous êtes en salle d’attente : un organisateur va vous faire entrer.",
        "status_joined": "Vous êtes dans la réunion.",
        "status_left": "Vous avez quitté la réunion.",
        "status_reconnecting": "Reconnexion…",
        "err_bad_message": "La passerelle n’a pas compris cette page. Rechargez-la et réessayez.",
        "err_not_authenticated": "La page a mis trop de temps à se connecter. Rechargez-la et réessayez.",
        "err_invalid_link": "Ce lien ne fonctionne pas. Demandez un nouveau lien à l’organisateur.",
        "err_room_closed": "Cette réunion n’est pas ouverte en ce moment.",
        "err_too_big": "La page a envoyé trop de données. Rechargez-la et réessayez.",
        "err_too_many": "La page a envoyé trop de messages. Rechargez-la et réessayez.",
        "err_removed": "Un organisateur vous a retiré de la réunion.",
        "err_ended": "La réunion est terminée.",
        "err_refused": "Un organisateur ne vous a pas fait entrer.",
        "err_unavailable": "La passerelle ne peut pas vous accueillir maintenant. Réessayez dans quelques minutes.",
        "err_mic_blocked": "Le navigateur n’a pas autorisé le micro. Autorisez-le et rejoignez à nouveau.",
        "err_muted_by_organiser": "L’organisateur a coupé votre micro.",
        "err_unmuted_by_organiser": "L’organisateur a réactivé votre micro.",
        "err_asked_to_unmute": "L’organisateur vous invite à parler : réactivez votre micro.",
        "err_mic_missing": "Aucun micro utilisable n’a été trouvé. Branchez-en un et rejoignez à nouveau.",
        "err_camera_blocked": "Le navigateur n’a pas autorisé la caméra.",
        "err_camera_missing": "Aucune caméra utilisable n’a été trouvée.",
        "err_connection_lost": "La connexion a été perdue. Reconnexion…",
        "err_restarting": "La passerelle redémarre. Reconnexion…",
        "err_draining": "La passerelle va redémarrer ; cette page se reconnectera d’elle-même.",
        "err_name_missing": "Saisissez votre nom (1 à 100 caractères).",
        "err_unsupported": "Ce navigateur ne peut pas rejoindre d’appel. Utilisez un Chrome ou Firefox récent.",
        "err_moderation_failed": "L’action n’a pas abouti.",
        "moderation": "Modération",
        "mod_admit_all": "Faire entrer toute la salle d’attente",
        "mod_mute_all": "Couper tous les micros",
        "mod_admit": "Faire entrer",
        "mod_admit_aria": "Faire entrer {name}",
        "mod_refuse": "Refuser",
        "mod_refuse_aria": "Refuser {name}",
        "mod_mute": "Couper le micro",
        "mod_mute_aria": "Couper le micro : {name}",
        "mod_unmute": "Réactiver le micro",
        "mod_unmute_aria": "Réactiver le micro : {name}",
        "mod_ask_unmute": "Inviter à parler",
        "mod_ask_unmute_aria": "Inviter à parler : {name}",
        "mod_remove": "Retirer",
        "mod_remove_aria": "Retirer {name}",
    },
}


def pick_lang(accept_language: str | None) -> str:
    """``fr`` or ``en``: the one the ``Accept-Language`` header prefers (``en`` by default)."""
    best, best_q = "en", 0.0
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:  # ties: the first listed wins
            best, best_q = primary, q
    return best


def _page(title: str, body: str, lang: str = "en") -> str:
    return (
        f"<!doctype html><html lang={lang}><head><meta charset=utf-8>"
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


def join_html(
    room_name: str,
    number: str,
    role: str,
    token: str,
    lang: str = "en",
    room_id: str | None = None,
) -> str:
    """The join page of ``role``'s link of room ``number``, first shown in ``lang``.

    An organiser's page also gets ``room_id`` in its config (the moderation routes need it)
    and the room-wide moderation buttons; other roles get neither.
    """
    lang = lang if lang in LANGS else "en"
    organiser = role == "organiser" and room_id is not None
    texts = TEXTS[lang]

    def tr(key: str, tag: str = "span", attrs: str = "") -> str:
        return f"<{tag}{attrs} data-i18n={key}>{html.escape(texts[key])}</{tag}>"

    settings: dict[str, object] = {
        "number": number,
        "role": role,
        "token": token,
        "lang": lang,
        "ws_path": f"/api/join/{number}/ws",
        "texts": TEXTS,
    }
    if organiser:
        settings["room_id"] = room_id
    config = json.dumps(settings, ensure_ascii=False)
    # JSON inside <script>: escape "<" so the text cannot close the element.
    config = config.replace("<", "\\u003c")
    role_text = html.escape(texts.get(f"role_{role}", role))
    spectator = role == "spectator"
    body = (
        '<nav id=lang-switch aria-label="Language / Langue">'
        f"<button type=button id=lang-en lang=en aria-pressed={str(lang == 'en').lower()}>"
        "English</button> "
        f"<button type=button id=lang-fr lang=fr aria-pressed={str(lang == 'fr').lower()}>"
        "Français</button></nav>"
        f"<h1>{html.escape(room_name)}</h1>"
        f"<p>{tr('joining_as')} <span id=role><strong>{role_text}</strong></span>.</p>"
        + (tr("spectator_note", "p", " id=spectator-note") if spectator else "")
        + "<form id=join-form>"
        + tr("name_label", "label", " for=name")
        + "<br><input id=name name=name autocomplete=name maxlength=100 required> "
        + tr("join", "button", " id=join type=submit")
        + "</form>"
        "<div id=status role=status aria-live=polite></div>"
        "<p id=status-text></p>"
        "<div id=message role=alert></div>"
        "<section id=controls aria-labelledby=controls-title>"
        + tr("controls", "h2", " id=controls-title")
        + tr("mic_label", "label", " for=mic")
        + f" <select id=mic{' disabled' if spectator else ''}>"
        + tr("mic_default", "option", ' value=""')
        + "</select> "
        + tr("mute", "button", " id=mute type=button aria-pressed=false disabled")
        + " "
        + tr("camera", "button", " id=camera type=button aria-pressed=false")
        + " "
        + tr("leave", "button", " id=leave type=button disabled")
        + "<video id=local muted playsinline autoplay hidden></video>"
        "</section>"
        "<section aria-labelledby=participants-title>"
        + tr("participants", "h2", " id=participants-title")
        + (
            "<div id=moderation role=group aria-labelledby=moderation-title hidden>"
            + tr("moderation", "span", " id=moderation-title hidden")
            + tr("mod_admit_all", "button", " id=admit-all type=button disabled")
            + " "
            + tr("mod_mute_all", "button", " id=mute-all type=button")
            + "</div>"
            if organiser
            else ""
        )
        + "<ul id=participants></ul></section>"
        "<audio id=remote-audio autoplay></audio>"
        f'<script id=join-config type="application/json">{config}</script>'
        f'<script src="{JOIN_SCRIPT_PATH}"></script>'
    )
    return _page(room_name, body, lang)


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
    lang = pick_lang(request.headers.get("Accept-Language"))
    return web.Response(
        text=join_html(
            room.name,
            room.number,
            role.value,
            token,
            lang,
            room_id=room.id if role.value == "organiser" else None,
        ),
        content_type="text/html",
        headers={**_HEADERS, "Content-Language": lang, "Vary": "Accept-Language"},
    )


_SCRIPT_FILE = Path(__file__).with_name("static") / "join.js"
_script: tuple[bytes, str] | None = None


def _load_script() -> tuple[bytes, str]:
    global _script
    if _script is None:
        body = _SCRIPT_FILE.read_bytes()
        _script = body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _script


async def join_script(request: web.Request) -> web.StreamResponse:
    """``GET /join/static/join.js``: the join page's client (revalidated on each load)."""
    body, etag = await asyncio.to_thread(_load_script)
    headers = {
        "Cache-Control": "no-cache",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body, content_type="application/javascript", charset="utf-8", headers=headers
    )
