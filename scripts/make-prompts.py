#!/usr/bin/env python3
"""Speak every prompt of gateway/prompts in French and English and write the shipped WAVs.

    python scripts/make-prompts.py            # writes gateway/prompts/<lang>/<name>.wav

Needs the Debian packages ``espeak-ng`` and ``sox``. Each prompt is spoken by espeak-ng (plain
``fr`` and ``en-us`` voices, a little slower than the default), then sox trims the silence at both
ends, adds a short fixed lead-in and tail, normalises to -3 dBFS and writes 16 kHz mono 16-bit
WAV. Dithering is off, so the same espeak-ng/sox versions give byte-identical files.

The MBROLA voices (``mb-fr1``, ``mb-us1``) would sound better, but their licence forbids
commercial use and Debian ships them only in non-free; we stay with espeak-ng's own voices.

The texts below are the source of truth: edit them here, rerun the script, commit the WAVs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "gateway" / "prompts"

VOICES = {"fr": "fr", "en": "en-us"}
RATE = 150  # words per minute (espeak-ng's default is 175)

# name -> language -> text. Keep these in step with gateway.prompts.PROMPTS (a test checks).
TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "Welcome to the conference service. Please enter your conference code, "
        "followed by the pound key.",
        "fr": "Bienvenue sur le service de conférence. Veuillez saisir le code de votre "
        "conférence, suivi de la touche dièse.",
    },
    "enter_pin": {
        "en": "Please enter the conference PIN, followed by the pound key.",
        "fr": "Veuillez saisir le code confidentiel de la conférence, suivi de la touche dièse.",
    },
    "enter_host_pin": {
        "en": "If you are the organiser, enter your PIN followed by the pound key. "
        "Otherwise, just press the pound key.",
        "fr": "Si vous êtes l'organisateur, saisissez votre code confidentiel, suivi de la "
        "touche dièse. Sinon, appuyez simplement sur la touche dièse.",
    },
    "wrong_code": {
        "en": "This conference code is not valid. Please try again.",
        "fr": "Ce code de conférence n'est pas valide. Veuillez réessayer.",
    },
    "wrong_pin": {
        "en": "This PIN is not valid. Please try again.",
        "fr": "Ce code confidentiel n'est pas valide. Veuillez réessayer.",
    },
    "room_locked": {
        "en": "Too many wrong PINs were entered for this conference. PIN entry is blocked "
        "for a few minutes. Please try again later.",
        "fr": "Trop de codes confidentiels erronés ont été saisis pour cette conférence. "
        "La saisie du code est bloquée pendant quelques minutes. Veuillez réessayer plus tard.",
    },
    "not_open": {
        "en": "This conference is not open at this time.",
        "fr": "Cette conférence n'est pas ouverte pour le moment.",
    },
    "joining": {
        "en": "You are joining the conference.",
        "fr": "Vous rejoignez la conférence.",
    },
    "goodbye": {
        "en": "Goodbye.",
        "fr": "Au revoir.",
    },
    "muted": {
        "en": "You are muted. Press star six to unmute.",
        "fr": "Votre micro est coupé. Appuyez sur étoile six pour le réactiver.",
    },
    "unmuted": {
        "en": "You are unmuted.",
        "fr": "Votre micro est réactivé.",
    },
    "removed": {
        "en": "You have been removed from the conference by the organiser. Goodbye.",
        "fr": "L'organisateur vous a retiré de la conférence. Au revoir.",
    },
    "ended": {
        "en": "The conference has ended. Goodbye.",
        "fr": "La conférence est terminée. Au revoir.",
    },
    "ask_unmute": {
        "en": "The organiser asks you to speak. Press star six to unmute.",
        "fr": "L'organisateur vous invite à parler. Tapez étoile six pour réactiver votre micro.",
    },
    "refused": {
        "en": "The organiser has not let you into the conference. Goodbye.",
        "fr": "L'organisateur ne vous a pas admis dans la conférence. Au revoir.",
    },
    "waiting": {
        "en": "Please wait, the organiser will let you in shortly.",
        "fr": "Veuillez patienter, l'organisateur va vous faire entrer dans quelques instants.",
    },
}

# Spelling fixes for the synthesiser only (espeak-ng spells capitalised "PIN" letter by letter).
SPOKEN: dict[str, dict[str, str]] = {
    "en": {"PINs": "pins", "PIN": "pin"},
    "fr": {},
}

# sox effects after espeak-ng: drop silence at both ends, then a 0.15 s lead-in and 0.4 s tail,
# 6 dB of headroom so resampling cannot clip, 16 kHz, and the peak normalised to -3 dBFS.
_TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
_EFFECTS = [*_TRIM, "pad", "0.15", "0.4", "gain", "-6", "rate", "-v", "16k", "norm", "-3"]


def spoken(text: str, language: str) -> str:
    for written, said in SPOKEN[language].items():
        text = text.replace(written, said)
    return text


def make(name: str, language: str, out_dir: Path, tmp: Path) -> Path:
    raw = tmp / f"{language}-{name}.raw.wav"
    subprocess.run(
        ["espeak-ng", "-v", VOICES[language], "-s", str(RATE), "-b", "1", "-w", str(raw), "--"]
        + [spoken(TEXTS[name][language], language)],
        check=True,
    )
    target = out_dir / language / f"{name}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"]
        + [str(target), *_EFFECTS],
        check=True,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=OUT, help="prompt directory (default: %(default)s)"
    )
    parser.add_argument("names", nargs="*", help="prompts to make (default: all)")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        print(
            f"missing tools: {', '.join(missing)} (apt-get install espeak-ng sox)", file=sys.stderr
        )
        return 1
    names = args.names or list(TEXTS)
    unknown = [n for n in names if n not in TEXTS]
    if unknown:
        print(f"unknown prompts: {', '.join(unknown)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for language in VOICES:
                print(make(name, language, args.out, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
