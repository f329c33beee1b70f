"""Pseudonyms: keyed HMAC-SHA256 of identifiers, the one :class:`Pseudonymizer` of labral.

Two users, one class and one key rule (at least :data:`MIN_KEY_BYTES`, from a file or from
``$LABRAL_PSEUDONYM_KEY``):

- ``labral manifest`` names patients, hips and clips (:meth:`Pseudonymizer.patient`, ...).
  The same key and the same PatientID always give the same patient id, so manifests built
  on different days from the same archive join up; without the key nobody can recompute (or
  confirm a guess at) the id of a known patient. The key is never part of a config and is
  never written anywhere: the only trace of it in the outputs is
  :attr:`Pseudonymizer.key_id`, an HMAC of a fixed string that tells two manifests made
  with the same key apart from two made with different keys.
- ``labral serve`` keys the results store by UID (:meth:`Pseudonymizer.key`): an unkeyed
  SHA-256 of a UID can be reversed by anyone holding a list of candidate UIDs (a PACS
  export, say); the keyed hash cannot without the key. The same UID always gets the same
  key under one secret, so a study's results stay linked, and the service can find the
  results of a UID it is given (WADO-RS) without storing it (``serve/dicom/pseudonym.py``
  chooses the service's secret).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from labral.errors import BadConfigError

KEY_ENV = "LABRAL_PSEUDONYM_KEY"
#: Shortest key accepted, in bytes (32 hex characters = 128 bits).
MIN_KEY_BYTES = 16
#: Hex digits kept from each digest (64 bits: no collision in any cohort of realistic size).
ID_HEX = 16

HOW_TO_MAKE_A_KEY = (
    "make a key once, keep it private, and reuse it for every manifest of this archive "
    "(the same key gives the same ids; a new key gives new ids):\n"
    '  python -c "import secrets; print(secrets.token_hex(32))" > ~/.labral_pseudonym.key\n'
    "  chmod 600 ~/.labral_pseudonym.key\n"
    f"then pass key_file=~/.labral_pseudonym.key (or export {KEY_ENV}=<the key>)"
)


def load_key(key_file: str | os.PathLike | None) -> bytes:
    """Read the pseudonym key from ``key_file``, else from ``$LABRAL_PSEUDONYM_KEY`` (only
    that variable; surrounding whitespace is ignored).

    Args:
        key_file: a file holding the key (surrounding whitespace is ignored), or None.

    Returns:
        The key bytes (at least :data:`MIN_KEY_BYTES`).

    Raises:
        BadConfigError: no key given, an unreadable key file, or a key that is too short;
            the message says how to make one. The key itself is never part of a message.
    """
    if key_file:
        path = Path(key_file).expanduser()
        try:
            key = path.read_bytes().strip()
        except OSError as error:
            raise BadConfigError(
                f"key_file={key_file}: cannot read the pseudonym key ({error.strerror}); "
                + HOW_TO_MAKE_A_KEY
            ) from error
        where = f"key_file={key_file}"
    else:
        key = os.environ.get(KEY_ENV, "").strip().encode("utf-8")
        where = f"${KEY_ENV}"
        if not key:
            raise BadConfigError(
                "no pseudonym key: patient and hip ids are keyed hashes (HMAC-SHA256) of the "
                "PatientID, so labral needs a key to write them; " + HOW_TO_MAKE_A_KEY
            )
    check_key_length(key, where)
    return key


def check_key_length(key: bytes, where: str) -> None:
    """Refuse a key shorter than :data:`MIN_KEY_BYTES` (the one rule for every key).

    Raises:
        BadConfigError: naming ``where`` the key came from (never the key itself).
    """
    if len(key) < MIN_KEY_BYTES:
        raise BadConfigError(
            f"{where}: the pseudonym key has {len(key)} bytes, fewer than {MIN_KEY_BYTES}; "
            + HOW_TO_MAKE_A_KEY
        )


class Pseudonymizer:
    """Keyed ids for patients, hips and clips, and keys for UIDs (the key stays inside).

    Args:
        key: secret bytes (:func:`load_key`, or the service's secret), at least
            :data:`MIN_KEY_BYTES`.

    Raises:
        BadConfigError: a shorter key.
    """

    def __init__(self, key: bytes) -> None:
        check_key_length(key, "Pseudonymizer")
        self._key = bytes(key)
        self.key_id = self._digest("labral-key-id", "")[:8]

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r})"

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def patient(self, patient_id: str) -> str:
        """``P`` + 16 hex digits of HMAC-SHA256(key, PatientID), whitespace stripped."""
        return "P" + self._digest("patient", patient_id.strip())[:ID_HEX]

    @staticmethod
    def hip(patient: str, side: str) -> str:
        """The hip id of a pseudonymous ``patient`` and side ``L``/``R`` (``<patient>_<side>``,
        as the synthetic manifests write it)."""
        return f"{patient}_{side}"

    def clip(self, instance: str) -> str:
        """``C`` + 16 hex digits of HMAC-SHA256(key, SOP Instance UID or relative path)."""
        return "C" + self._digest("clip", instance.strip())[:ID_HEX]

    def key(self, uid: str | None) -> str | None:
        """The results store's key of a UID: the 64 hex digits of HMAC-SHA256(key, UID),
        whitespace stripped (None for a missing or empty UID)."""
        if not uid:
            return None
        message = str(uid).strip().encode("ascii", "replace")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
