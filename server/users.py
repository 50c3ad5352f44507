"""The users of the configured Credentials identity providers."""

from __future__ import annotations

from dataclasses import dataclass

from server import passwords
from server.config import Settings


@dataclass(frozen=True)
class UserInfo:
    provider: str
    username: str
    admin: bool
    mfa_provider: str | None

    @property
    def dn(self) -> str:
        """The vendor's user distinguished name, ``CN=<username>,OU=<identity provider>``."""
        return f"CN={self.username},OU={self.provider}"


class UserDirectory:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def find(self, provider: str, username: str) -> UserInfo | None:
        idp = self._settings.identity_provider(provider)
        if idp is None:
            return None
        for user in idp.users:
            if user.username == username:
                return UserInfo(idp.name, user.username, user.admin, idp.mfa_provider)
        return None

    def check_password(self, provider: str, username: str, password: str) -> UserInfo | None:
        """The user if the password is right; the work done is the same for unknown users."""
        idp = self._settings.identity_provider(provider)
        user = next((u for u in idp.users if u.username == username), None) if idp else None
        if idp is None or user is None:
            if idp is None or any(u.password_hash for u in idp.users):
                passwords.burn_time_like_a_hash()
            else:
                passwords.verify_plain(password, "unknown user")
            return None
        if user.password_hash is not None:
            ok = passwords.verify_hash(password, user.password_hash)
        else:
            assert user.password is not None
            ok = passwords.verify_plain(password, user.password)
        return UserInfo(idp.name, user.username, user.admin, idp.mfa_provider) if ok else None
