"""The secret of the results store's pseudonyms (the class: ``labral.datasets.manifests``).

Which secret keys the store's UIDs, first found wins:

1. ``store.pseudonym_key`` (a config value; any text, hashed to 32 bytes);
2. ``$LABRAL_STORE_PSEUDONYM_KEY`` (deprecated, warned; the store was keyed with it), then
   ``$LABRAL_PSEUDONYM_KEY`` (the one name, shared with ``labral manifest``), hashed the
   same way; but a ``state_dir`` that already holds ``pseudonym.key`` keeps that key (its
   store was keyed with it before ``labral serve`` read ``$LABRAL_PSEUDONYM_KEY``);
3. ``<state_dir>/pseudonym.key``: 32 random bytes, created on first use (mode 0600).

The same text always gives the same secret, so the same UID gets the same key as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path

from labral.datasets.manifests.pseudonyms import KEY_ENV, Pseudonymizer

__all__ = ["DEPRECATED_KEY_ENV", "KEY_FILE", "Pseudonymizer", "store_pseudonymizer"]
log = logging.getLogger("labral.serve")
KEY_FILE = "pseudonym.key"
KEY_BYTES = 32
#: What ``labral serve`` read before ``$LABRAL_PSEUDONYM_KEY``; still read, first (its
#: stores were keyed with it), with a deprecation warning (a FutureWarning, which users see).
DEPRECATED_KEY_ENV = "LABRAL_STORE_PSEUDONYM_KEY"


def store_pseudonymizer(
    configured: str | None, state_dir: Path, environ: Mapping[str, str] | None = None
) -> Pseudonymizer:
    """The results store's :class:`Pseudonymizer` (see the module docstring for the order).

    Args:
        configured: ``store.pseudonym_key``.
        state_dir: where ``pseudonym.key`` lives.
        environ: the environment (``os.environ`` when None).
    """
    text = configured
    if not text:
        found = _from_environment(os.environ if environ is None else environ)
        if found is not None and found[0] == KEY_ENV and (state_dir / KEY_FILE).exists():
            log.warning(
                "$%s is set but %s holds the key this store was made with; it is kept. To "
                "key a new store with $%s, start with a state_dir without %s",
                KEY_ENV,
                state_dir / KEY_FILE,
                KEY_ENV,
                KEY_FILE,
            )
        elif found is not None:
            text = found[1]
    if text:
        return Pseudonymizer(hashlib.sha256(text.encode()).digest())
    return Pseudonymizer(_key_file(state_dir))


def _from_environment(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(name, text) of the first of ``$LABRAL_STORE_PSEUDONYM_KEY`` (warned) and
    ``$LABRAL_PSEUDONYM_KEY`` that is set, or None.

    The text is exactly as given, as the service always read it: a trailing newline from a
    secret file is part of its key, and dropping it would change every pseudonym of an
    existing store (``labral manifest`` strips its key: ``load_key``).
    """
    for name in (DEPRECATED_KEY_ENV, KEY_ENV):
        text = environ.get(name, "")
        if not text.strip():
            continue
        if name == DEPRECATED_KEY_ENV:
            warnings.warn(
                f"${DEPRECATED_KEY_ENV} is deprecated; set ${KEY_ENV} to the same value "
                "(the same key gives the same pseudonyms; a pseudonym.key file already in "
                "state_dir is kept over it)",
                FutureWarning,  # a deprecation end users see (DeprecationWarning is hidden)
                stacklevel=2,
            )
        return name, text
    return None


def _key_file(state_dir: Path) -> bytes:
    """The bytes of ``<state_dir>/pseudonym.key``, written first if missing (mode 0600)."""
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
    return path.read_bytes()
