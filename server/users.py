"""The users of the configured Credentials identity providers."""

from __future__ import annotations

from dataclasses import dataclass

from server import passwords
from server.config import Settings, User


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
    """Indexed once at start: every authenticated request looks its user up."""

    def __init__(self, settings: Settings) -> None:
        self._users: dict[tuple[str, str], tuple[UserInfo, User]] = {}
        self._has_hashes: dict[str, bool] = {}
        for idp in settings.identity_providers:
            self._has_hashes[idp.name] = any(u.password_hash for u in idp.users)
            for user in idp.users:
                info = UserInfo(idp.name, user.username, user.admin, idp.mfa_provider)
                self._users[(idp.name, user.username)] = (info, user)

    def uses_scrypt(self, provider: str) -> bool:
        """Whether a password check for this provider may run scrypt (unknown ones do)."""
        return self._has_hashes.get(provider, True)

    def find(self, provider: str, username: str) -> UserInfo | None:
        found = self._users.get((provider, username))
        return None if found is None else found[0]

    def check_password(self, provider: str, username: str, password: str) -> UserInfo | None:
        """The user if the password is right; the work done is the same for unknown users."""
        found = self._users.get((provider, username))
        if found is None:
            if self.uses_scrypt(provider):
                passwords.burn_time_like_a_hash()
            else:
                passwords.verify_plain(password, "unknown user")
            return None
        info, user = found
        if user.password_hash is not None:
            ok = passwords.verify_hash(password, user.password_hash)
        else:
            assert user.password is not None
            ok = passwords.verify_plain(password, user.password)
        return info if ok else None
