# -*- test-case-name: tests.test_login_flow, tests.test_store, tests.test_attacks -*-
"""Opaque bearer tokens: 256 random bits handed out once, only their hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from appgate_mfa_server.store.base import Stage, TokenRecord

TOKEN_BYTES = 32


@dataclass(frozen=True)
class IssuedToken:
    value: str
    record: TokenRecord


def hash_token(value: str) -> str:
    """SHA-256 suffices: the tokens are random, so there is nothing to brute-force."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(
    *, session_id: str, provider: str, username: str, stage: Stage, expires_at: float
) -> IssuedToken:
    value = secrets.token_urlsafe(TOKEN_BYTES)
    record = TokenRecord(
        token_hash=hash_token(value),
        session_id=session_id,
        provider=provider,
        username=username,
        stage=stage,
        expires_at=expires_at,
    )
    return IssuedToken(value, record)


def new_session_id() -> str:
    return secrets.token_hex(16)
