"""Bearer tokens fail closed: no key, no start; a lenient claim or encoding, no caller."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from tests.common.hostile_tokens import hs256, lenient_tokens
from workers.common.contract.errors import InvalidInput
from workers.common.runtime.auth import InvalidToken, TokenVerifier, mint_token
from workers.common.runtime.settings import AuthSettings, VerifierSettings
from workers.puller.settings import PullerSettings

SECRET = "auth-tests-secret-" + "0123456789abcdef" * 2


@pytest.fixture(autouse=True)
def no_secret_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFIER_JWT_SECRET", "NOTIFIER_JWT_PUBLIC_KEY", "NOTIFIER_JWT_MAX_LIFETIME_S", "NOTIFIER_CORE_URL"):
        monkeypatch.delenv(name, raising=False)


def public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


def test_settings_without_a_secret_or_public_key_are_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="NOTIFIER_JWT_SECRET"):
        VerifierSettings()


def test_an_empty_or_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="NOTIFIER_JWT_SECRET"):
        VerifierSettings(jwt_secret="")
    with pytest.raises(ValidationError, match="shorter than 32 bytes"):
        VerifierSettings(jwt_secret="too-short")


def test_the_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_JWT_SECRET", SECRET)
    monkeypatch.setenv("NOTIFIER_JWT_MAX_LIFETIME_S", "600")
    settings = VerifierSettings()
    assert settings.jwt_secret == SECRET
    assert settings.jwt_max_lifetime_s == 600
    assert SECRET not in repr(settings)


def test_a_public_key_alone_starts_and_refuses_every_hmac_token() -> None:
    settings = VerifierSettings(jwt_public_key=public_pem())
    verifier = TokenVerifier.from_settings(settings)
    forged = hs256({"sub": "mallory", "exp": int(time.time()) + 60}, b"")
    with pytest.raises(InvalidToken, match="not accepted"):
        verifier.verify(forged)


@pytest.mark.parametrize("name", sorted(lenient_tokens(SECRET)))
def test_each_lenient_token_is_refused(name: str) -> None:
    verifier = TokenVerifier(secret=SECRET)
    with pytest.raises(InvalidToken):
        verifier.verify(lenient_tokens(SECRET)[name])


def test_a_strict_token_within_the_lifetime_is_accepted() -> None:
    verifier = TokenVerifier(secret=SECRET, max_lifetime_s=3600)
    principal = verifier.verify(mint_token(secret=SECRET, sub="alice", roles=["notifier_admin"], ttl_s=3000))
    assert principal.sub == "alice"
    assert principal.has("notifier_admin")
    too_long = jwt.encode({"sub": "alice", "exp": int(time.time()) + 4000}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="longer than 3600"):
        verifier.verify(too_long)


def test_a_token_of_absurd_length_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidToken, match="too long"):
        TokenVerifier(secret=SECRET).verify("a" * 100_000 + ".b.c")


def test_rooms_that_only_mint_start_without_a_secret() -> None:
    assert AuthSettings().jwt_secret == ""


def test_minting_without_a_secret_is_refused() -> None:
    with pytest.raises(InvalidInput, match="NOTIFIER_JWT_SECRET"):
        mint_token(secret="", sub="alice")


def test_the_puller_needs_a_secret_only_when_it_hands_digests_to_core() -> None:
    assert PullerSettings().core_url == ""
    with pytest.raises(ValidationError, match="NOTIFIER_JWT_SECRET"):
        PullerSettings(core_url="http://core:8000")
    assert PullerSettings(core_url="http://core:8000", jwt_secret=SECRET).jwt_secret == SECRET
