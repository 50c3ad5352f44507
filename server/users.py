# -*- test-case-name: tests.test_config, tests.test_login_flow -*-
"""The users of the configured Credentials identity providers."""

from __future__ import annotations

from dataclasses import dataclass

from appgate_mfa_server import passwords
from appgate_mfa_server.config import Settings, User
from appgate_mfa_server.store.base import user_dn


@dataclass(frozen=True)
class UserInfo:
    provider: str
    username: str
    admin: bool
    mfa_provider: str | None

    @property
    def dn(self) -> str:
        """The vendor's user distinguished name, ``CN=<username>,OU=<identity provider>``."""
        return user_dn(self.provider, self.username)


class UserDirectory:
    """Indexed once at start: every authenticated request looks its user up.

    A failed password check costs the same for every account name of an identity provider,
    known or not: where any user of the provider has an scrypt hash, every check runs exactly
    one scrypt with that hash's parameters (against a dummy hash for unknown users and for
    users with a clear-text demo password), so the time does not tell which names exist.
    """

    def __init__(self, settings: Settings) -> None:
        self._users: dict[tuple[str, str], tuple[UserInfo, User]] = {}
        self._dummy_hash: dict[str, str | None] = {}
        for idp in settings.identity_providers:
            first_hash = next((u.password_hash for u in idp.users if u.password_hash), None)
            self._dummy_hash[idp.name] = (
                None if first_hash is None else passwords.dummy_hash_like(first_hash)
            )
            for user in idp.users:
                info = UserInfo(idp.name, user.username, user.admin, idp.mfa_provider)
                self._users[(idp.name, user.username)] = (info, user)

    def uses_scrypt(self, provider: str) -> bool:
        """Whether a password check for this provider runs scrypt (a thread is worth it)."""
        return self._dummy_hash.get(provider) is not None

    def find(self, provider: str, username: str) -> UserInfo | None:
        found = self._users.get((provider, username))
        return None if found is None else found[0]

    def check_password(self, provider: str, username: str, password: str) -> UserInfo | None:
        """The user if the password is right; the work done is the same for every name."""
        dummy = self._dummy_hash.get(provider)
        found = self._users.get((provider, username))
        if found is None:
            if dummy is not None:
                passwords.verify_hash(password, dummy)
            else:
                passwords.verify_plain(password, "unknown user")
            return None
        info, user = found
        if user.password_hash is not None:
            ok = passwords.verify_hash(password, user.password_hash)
        else:
            assert user.password is not None
            ok = passwords.verify_plain(password, user.password)
            if dummy is not None:  # as dear as the provider's hashed accounts
                passwords.verify_hash(password, dummy)
        return info if ok else None
