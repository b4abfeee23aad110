"""A PJSIP (pjsua2) SIP peer in its own process, driven by command-line arguments.

Run by path (it imports nothing from this repository)::

    python tests/peers/pjsua_peer.py call sip:1000@127.0.0.1:5060 --play tone.wav \
        --record heard.wav --seconds 5 [--dtmf 123# --dtmf-method rfc4733 --dtmf-at 2] \
        [--hold-at 2 --unhold-at 4] [--codecs PCMU,G722] [--port 0] [--rtp-port 40000]
    python tests/peers/pjsua_peer.py answer --port 5070 --play tone.wav --record heard.wav \
        [--seconds N --hangup] [--calls 1] [--answer-code 200] [--max-seconds 60]

Machine-readable lines on stdout (one per line, space-separated ``key=value`` after the tag)::

    EVENT READY port=5070
    EVENT INCOMING call=0 from=<sip:...>
    EVENT STATE call=0 state=CONFIRMED code=200
    EVENT CONFIRMED call=0
    EVENT MEDIA call=0 status=ACTIVE dir=... codec=PCMU/8000
    EVENT DTMF call=0 digit=5 method=rfc4733|info
    EVENT DTMF_SENT call=0 digits=123# method=rfc4733
    EVENT HOLD call=0 / EVENT UNHOLD call=0
    EVENT DISCONNECTED call=0 code=200 reason=Normal_call_clearing
    EVENT RECORDED path=heard.wav
    RESULT ok calls=1 ...   |   RESULT failed reason=...

Rules from experience (see /work/shared/README.md): one Endpoint per process, ``threadCnt=0``
and ``mainThreadOnly`` with ``libHandleEvents`` in a loop; ``boundAddress`` and
``publicAddress`` 127.0.0.1 on SIP and media transports; the null sound device, with the
call's audio connected both ways or no RTP (and no RFC 4733) is sent; the WAV recorder
finalises its header only when destroyed; the process ends with ``os._exit``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

LOCALHOST = "127.0.0.1"
_KEEP: list[Any] = []  # pjsua2 objects that must outlive their Python scope


def emit(tag: str, **fields: object) -> None:
    parts = [tag] + [f"{k}={_clean(v)}" for k, v in fields.items()]
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()


def _clean(v: object) -> str:
    return str(v).replace(" ", "_").replace("\n", "_") or "-"


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ep = pj.Endpoint()
        self.calls: dict[int, PeerCall] = {}
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.finished_calls: list[tuple[int, int]] = []  # (call id, last status code)
        self.confirmed = 0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.failure: str | None = None
        self.done = False

    # -- setup ---------------------------------------------------------------------------
    def start(self) -> None:
        a = self.args
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "pjsua-test-peer"
        cfg.logConfig.level = a.log_level
        cfg.logConfig.consoleLevel = 0
        if a.log:
            cfg.logConfig.filename = a.log
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.clockRate = a.clock_rate
        cfg.medConfig.sndClockRate = a.clock_rate
        self.ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = a.port
        tcfg.boundAddress = LOCALHOST
        tcfg.publicAddress = LOCALHOST
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        port = a.port or self.ep.transportGetInfo(0).localName.rsplit(":", 1)[-1]
        tcfg2 = pj.TransportConfig()
        tcfg2.port = int(port)
        tcfg2.boundAddress = LOCALHOST
        tcfg2.publicAddress = LOCALHOST
        try:
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcfg2)
        except pj.Error:
            tcfg2.port = 0
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcfg2)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self._set_codecs(a.codecs)

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{a.user}@{LOCALHOST}:{port}"
        acfg.regConfig.registerOnAdd = False
        mt = acfg.mediaConfig.transportConfig
        mt.boundAddress = LOCALHOST
        mt.publicAddress = LOCALHOST
        mt.port = a.rtp_port
        mt.portRange = 200 if a.rtp_port else 0
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sdpNatRewriteUse = False
        acfg.natConfig.viaRewriteUse = False
        acfg.natConfig.contactRewriteUse = False
        self.account = PeerAccount(self)
        self.account.create(acfg)
        _KEEP.append(self.account)
        emit("EVENT READY", port=port)

    def _set_codecs(self, codecs: str) -> None:
        wanted = [c.strip().upper() for c in codecs.split(",") if c.strip()]
        for info in self.ep.codecEnum2():
            name = info.codecId.split("/")[0].upper()
            prio = 0
            if name in wanted:
                prio = 255 - wanted.index(name)
            self.ep.codecSetPriority(info.codecId, prio)

    # -- media ---------------------------------------------------------------------------
    def connect_audio(self, am: pj.AudioMedia) -> None:
        a = self.args
        adm = self.ep.audDevManager()
        adm.getCaptureDevMedia().startTransmit(am)
        am.startTransmit(adm.getPlaybackDevMedia())
        if a.play:
            if self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(a.play)  # loops
            self.player.startTransmit(am)
        if a.record:
            if self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(a.record)
            am.startTransmit(self.recorder)

    def finish(self, code: int) -> None:
        # destroy the recorder so its WAV header is written, then leave without libDestroy
        if self.recorder is not None:
            self.recorder = None  # ~AudioMediaRecorder queues the bridge port's removal
            gc.collect()
            # pjmedia 2.15 removes conference ports asynchronously (clock thread); the WAV
            # writer writes its header when the port is really destroyed: wait for that.
            end = time.monotonic() + 2.0
            while time.monotonic() < end and not _wav_final(self.args.record):
                self.ep.libHandleEvents(10)
            emit("EVENT RECORDED", path=self.args.record, final=int(_wav_final(self.args.record)))
        codes = ",".join(str(c) for _, c in self.finished_calls) or "-"
        if self.failure:
            emit("RESULT failed", reason=self.failure, calls=self.confirmed, codes=codes)
        else:
            emit("RESULT ok", calls=self.confirmed, codes=codes)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    # -- loop ----------------------------------------------------------------------------
    def at(self, delay: float, fn: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, fn))

    def run(self, deadline: float) -> None:
        while not self.done:
            self.ep.libHandleEvents(10)
            now = time.monotonic()
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
            for _, fn in due:
                try:
                    fn()
                except pj.Error as exc:
                    emit("EVENT ERROR", what=exc.info())
            if now > deadline:
                self.failure = self.failure or "max-seconds"
                self.hangup_all()
                # give BYEs a moment to go out
                end = time.monotonic() + 1.0
                while time.monotonic() < end:
                    self.ep.libHandleEvents(10)
                return

    def hangup_all(self) -> None:
        for c in list(self.calls.values()):
            try:
                if c.isActive():
                    prm = pj.CallOpParam()
                    prm.statusCode = 603 if self.args.mode == "answer" and not c.confirmed else 200
                    c.hangup(prm)
            except pj.Error:
                pass

    # -- call events -----------------------------------------------------------------------
    def on_confirmed(self, call: PeerCall) -> None:
        a = self.args
        self.confirmed += 1
        if a.dtmf:
            self.at(a.dtmf_at, lambda: call.send_dtmf(a.dtmf, a.dtmf_method))
        if a.hold_at is not None:
            self.at(a.hold_at, call.hold)
        if a.unhold_at is not None:
            self.at(a.unhold_at, call.unhold)
        if a.seconds is not None and (a.mode == "call" or a.hangup):
            self.at(a.seconds, call.hangup_now)

    def on_disconnected(self, call: PeerCall, code: int) -> None:
        self.finished_calls.append((call.cid, code))
        a = self.args
        if a.mode == "call":
            if not call.confirmed:
                self.failure = f"call-failed-{code}"
            self.done = True
        elif len(self.finished_calls) >= a.calls:
            self.done = True


def _wav_final(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 8 and int.from_bytes(head[4:8], "little") == size - 8


class PeerAccount(pj.Account):
    def __init__(self, peer: Peer) -> None:
        super().__init__()
        self.peer = peer

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = PeerCall(self.peer, self, prm.callId)
        self.peer.calls[call.cid] = call
        _KEEP.append(call)
        info = call.getInfo()
        emit("EVENT INCOMING", call=call.cid, **{"from": info.remoteUri})
        a = self.peer.args
        op = pj.CallOpParam()
        if a.answer_code >= 300:
            op.statusCode = a.answer_code
            call.answer(op)
            return
        op.statusCode = 180
        call.answer(op)

        def answer() -> None:
            if call.isActive():
                ok = pj.CallOpParam()
                ok.statusCode = a.answer_code
                call.answer(ok)

        self.peer.at(a.ring_seconds, answer)


class PeerCall(pj.Call):
    def __init__(self, peer: Peer, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.peer = peer
        self.confirmed = False
        self.cid = self.getId() if call_id != pj.PJSUA_INVALID_ID else -1

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        if self.cid < 0:
            self.cid = info.id
        emit("EVENT STATE", call=self.cid, state=info.stateText, code=info.lastStatusCode)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            emit("EVENT CONFIRMED", call=self.cid)
            self.peer.on_confirmed(self)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            emit(
                "EVENT DISCONNECTED",
                call=self.cid,
                code=info.lastStatusCode,
                reason=info.lastReason,
            )
            self.peer.on_disconnected(self, info.lastStatusCode)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for mi in info.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = {
                pj.PJSUA_CALL_MEDIA_NONE: "NONE",
                pj.PJSUA_CALL_MEDIA_ACTIVE: "ACTIVE",
                pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "LOCAL_HOLD",
                pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "REMOTE_HOLD",
                pj.PJSUA_CALL_MEDIA_ERROR: "ERROR",
            }.get(mi.status, str(mi.status))
            codec = "-"
            try:
                si = self.getStreamInfo(mi.index)
                codec = f"{si.codecName}/{si.codecClockRate}"
            except pj.Error:
                pass
            emit("EVENT MEDIA", call=self.cid, status=status, dir=mi.dir, codec=codec)
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                am = self.getAudioMedia(mi.index)
                _KEEP.append(am)
                self.peer.connect_audio(am)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
        emit("EVENT DTMF", call=self.cid, digit=prm.digit, method=method)

    # -- actions -------------------------------------------------------------------------
    def send_dtmf(self, digits: str, method: str) -> None:
        if not self.isActive():
            return
        if method == "info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.digits = digits
            prm.duration = 160
            self.sendDtmf(prm)
        else:
            self.dialDtmf(digits)
        emit("EVENT DTMF_SENT", call=self.cid, digits=digits, method=method)

    def hold(self) -> None:
        if self.isActive():
            self.setHold(pj.CallOpParam(True))
            emit("EVENT HOLD", call=self.cid)

    def unhold(self) -> None:
        if self.isActive():
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            self.reinvite(prm)
            emit("EVENT UNHOLD", call=self.cid)

    def hangup_now(self) -> None:
        if self.isActive():
            prm = pj.CallOpParam()
            prm.statusCode = 200
            self.hangup(prm)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="pjsua2 test peer")
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("call", "answer"):
        p = sub.add_parser(name)
        if name == "call":
            p.add_argument("uri")
        p.add_argument("--port", type=int, default=0, help="SIP port (UDP and TCP)")
        p.add_argument("--rtp-port", type=int, default=0, help="first RTP port to try")
        p.add_argument("--user", default="pjsua")
        p.add_argument("--play", help="WAV file to send (looped)")
        p.add_argument("--record", help="WAV file for what is heard")
        p.add_argument(
            "--seconds", type=float, help="hang up this long after the call is confirmed"
        )
        p.add_argument(
            "--codecs", default="PCMU,PCMA,G722", help="enabled codecs, in priority order"
        )
        p.add_argument("--clock-rate", type=int, default=16000)
        p.add_argument("--dtmf")
        p.add_argument("--dtmf-method", choices=["rfc4733", "info"], default="rfc4733")
        p.add_argument("--dtmf-at", type=float, default=1.0)
        p.add_argument("--hold-at", type=float)
        p.add_argument("--unhold-at", type=float)
        p.add_argument("--max-seconds", type=float, default=60.0)
        p.add_argument("--log", help="pjsip log file")
        p.add_argument("--log-level", type=int, default=4)
        if name == "answer":
            p.add_argument("--calls", type=int, default=1, help="exit after this many calls ended")
            p.add_argument("--hangup", action="store_true", help="hang up --seconds after confirm")
            p.add_argument("--answer-code", type=int, default=200)
            p.add_argument("--ring-seconds", type=float, default=0.0)
    args = ap.parse_args(argv)
    if args.mode == "call":
        args.calls, args.hangup, args.answer_code, args.ring_seconds = 1, True, 200, 0.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    deadline = time.monotonic() + args.max_seconds
    peer = Peer(args)
    try:
        peer.start()
        if args.mode == "call":
            call = PeerCall(peer, peer.account)
            _KEEP.append(call)
            prm = pj.CallOpParam(True)
            call.makeCall(args.uri, prm)
            call.cid = call.getId()
            peer.calls[call.cid] = call
            emit("EVENT CALLING", call=call.cid, uri=args.uri)
        peer.run(deadline)
    except pj.Error as exc:
        peer.failure = f"pjsua-error:{exc.info()}"
    except Exception as exc:  # report, never hang
        peer.failure = f"{type(exc).__name__}:{exc}"
    peer.finish(0 if peer.failure is None else 1)


if __name__ == "__main__":
    main()
