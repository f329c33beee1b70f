"""Pseudonymous keys: a keyed hash (HMAC-SHA256) of a DICOM UID, never the UID itself.

An unkeyed SHA-256 of a UID can be reversed by anyone holding a list of candidate UIDs (a
PACS export, say); the keyed hash cannot without the key. The same UID always gets the same
key under one secret, so a study's results stay linked to each other, and the service can
find the results of a UID it is given (WADO-RS) without ever storing that UID.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "pseudonym.key"
KEY_BYTES = 32


class Pseudonymizer:
    """Turns UIDs into stable, non-reversible keys.

    Args:
        secret: the HMAC key (keep it out of the store it protects).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym key needs at least 16 bytes")
        self._secret = secret

    def key(self, uid: str | None) -> str | None:
        """64 hex characters for ``uid`` (None for a missing or empty UID)."""
        if not uid:
            return None
        digest = hmac.new(self._secret, str(uid).strip().encode("ascii", "replace"), "sha256")
        return digest.hexdigest()

    @classmethod
    def from_settings(cls, configured: str | None, state_dir: Path) -> Pseudonymizer:
        """The configured secret, or the one kept in ``state_dir`` (created on first use).

        Args:
            configured: ``store.pseudonym_key`` (any string; it is hashed to 32 bytes).
            state_dir: where ``pseudonym.key`` lives when none is configured (mode 0600).
        """
        if configured:
            return cls(hashlib.sha256(configured.encode()).digest())
        path = state_dir / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(KEY_BYTES))
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(draft, path)  # atomic; a process that lost the race reads the winner's
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return cls(path.read_bytes())
