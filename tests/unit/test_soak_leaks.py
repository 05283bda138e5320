"""The soak's key-material scan (bench/soak_leaks.py) finds a secret in every form a log line could carry it, at any
alignment inside a longer encoded run, and reports nothing for lines that only look alike."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from bench.soak_leaks import SecretIndex, scan_lines, scan_logs

RNG = random.Random(12)
DEK = RNG.randbytes(32)
PRIVATE = RNG.randbytes(256)  # a private exponent's size


@pytest.fixture
def index() -> SecretIndex:
    found = SecretIndex()
    found.add("DEK a/1", DEK)
    found.add("private key d", PRIVATE)
    return found


@pytest.mark.parametrize(
    ("form", "text"),
    [
        ("hex", DEK.hex()),
        ("hex", DEK.hex().upper()),
        ("base64", base64.b64encode(DEK).decode()),
        ("base64", base64.b64encode(DEK).decode().rstrip("=")),
        ("base64url", base64.urlsafe_b64encode(DEK).decode().rstrip("=")),
    ],
)
def test_a_dek_is_found_in_each_text_form(index, form, text):
    if form == "base64url" and not any(c in text for c in "-_"):
        form = "base64"  # without those characters both alphabets read it alike
    assert scan_lines(index, "devhost", [f"2026-12-02 INFO unwrapped value={text} ok"])[0].form == form


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5])
def test_a_dek_inside_a_longer_base64_or_hex_run_is_found_at_any_alignment(index, offset):
    blob = RNG.randbytes(offset) + DEK + RNG.randbytes(7)
    lines = [f"x={base64.b64encode(blob).decode()}", f"y={base64.urlsafe_b64encode(blob).decode()}", f"z={blob.hex()}"]
    leaks = scan_lines(index, "emulators", lines)
    assert sorted(leak.line for leak in leaks) == [1, 2, 3]
    assert {leak.secret for leak in leaks} == {"DEK a/1"}


def test_raw_bytes_in_a_log_file_are_found(index, tmp_path):
    log = tmp_path / "azurite.log"
    log.write_bytes(b"first line\nbody: " + DEK + b" trailing\nlast\n")
    [leak] = scan_logs(index, [log])
    assert (leak.log, leak.line, leak.form, leak.secret) == ("azurite.log", 2, "raw", "DEK a/1")


def test_an_excerpt_of_a_longer_secret_is_found(index):
    excerpt = PRIVATE[40:100]
    [leak] = scan_lines(index, "devhost", [base64.b64encode(excerpt).decode()])
    assert leak.secret == "private key d"


def test_lines_that_only_look_like_secrets_are_clean(index):
    other = RNG.randbytes(64)
    near = bytearray(DEK)
    near[-1] ^= 1  # one bit off
    lines = [
        other.hex(),
        base64.b64encode(other).decode(),
        base64.b64encode(bytes(near)).decode(),
        binascii.hexlify(DEK[:31]).decode(),  # a prefix too short to be the key
        "Executed 'Functions.rewrap_worker' (Succeeded, Id=4ae2e0bf-e7d5-473b-a784-2673e0fd2622, Duration=154ms)",
    ]
    assert scan_lines(index, "devhost", lines) == []


def test_a_secret_too_short_to_scan_for_is_refused():
    with pytest.raises(ValueError, match="shorter than 32"):
        SecretIndex().add("short", b"\x01" * 16)
