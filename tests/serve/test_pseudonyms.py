"""One Pseudonymizer (``labral.datasets.manifests.pseudonyms``), one minimum key length, one
environment variable; the keyed hashes are the ones the two former classes made.

The expected digests below were computed with the two classes as they were before they
were merged (``serve/dicom/pseudonym.py`` and ``datasets/manifests/pseudonyms.py`` at
commit 5edc177): an existing results store and existing manifests keep their keys.
"""

from __future__ import annotations

import warnings

import pytest

from labral.datasets.manifests import pseudonyms
from labral.datasets.manifests.pseudonyms import KEY_ENV, MIN_KEY_BYTES, Pseudonymizer, load_key
from labral.errors import BadConfigError
from labral.serve.dicom import pseudonym as serve_pseudonym
from labral.serve.dicom.pseudonym import DEPRECATED_KEY_ENV, KEY_FILE, store_pseudonymizer

UID = "1.2.826.0.1.3680043.8.498.12345"
# HMAC-SHA256(sha256("a configured secret"), UID): the store key of a configured secret
CONFIGURED = "cd40c5da7b516fe8c3d449a32d66d9b055370bdc5ab75cf7c49fe081c11e52af"
# HMAC-SHA256(bytes(range(32)), UID): the store key under a pseudonym.key file
KEY_FILE_BYTES = bytes(range(32))
FROM_KEY_FILE = "b66bbc7cbcfd3b3b4921138fec6853deda1e52e4aaf7c373ae1e005e04fcd922"
MANIFEST_KEY = b"0123456789abcdef0123456789abcdef"


def test_store_keys_are_bit_identical_to_before(tmp_path):
    configured = store_pseudonymizer("a configured secret", tmp_path, environ={})
    assert configured.key(UID) == CONFIGURED == configured.key(f" {UID} ")
    assert configured.key(None) is None and configured.key("") is None
    (tmp_path / KEY_FILE).write_bytes(KEY_FILE_BYTES)
    assert store_pseudonymizer(None, tmp_path, environ={}).key(UID) == FROM_KEY_FILE


def test_manifest_ids_are_bit_identical_to_before():
    names = Pseudonymizer(MANIFEST_KEY)
    assert names.key_id == "3dce9cfd"
    assert names.patient(" PID-42 ") == "P422493b6e8b1ed7d"
    assert names.hip(names.patient("PID-42"), "L") == "P422493b6e8b1ed7d_L"
    assert names.clip(UID) == "Caf01562c7d3d3580"


def test_one_class_and_one_minimum_key_length():
    assert serve_pseudonym.Pseudonymizer is Pseudonymizer
    assert not hasattr(serve_pseudonym, "MIN_KEY_BYTES")
    with pytest.raises(BadConfigError, match=f"fewer than {MIN_KEY_BYTES}"):
        Pseudonymizer(b"x" * (MIN_KEY_BYTES - 1))
    Pseudonymizer(b"x" * MIN_KEY_BYTES)


def test_the_store_reads_the_one_variable_and_the_deprecated_one_with_a_warning(tmp_path):
    text = "a configured secret"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the one name warns about nothing
        assert store_pseudonymizer(None, tmp_path, {KEY_ENV: text}).key(UID) == CONFIGURED
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.warns(FutureWarning, match=f"{DEPRECATED_KEY_ENV} is deprecated.*{KEY_ENV}"):
        old = store_pseudonymizer(None, tmp_path, {DEPRECATED_KEY_ENV: text})
    assert old.key(UID) == CONFIGURED
    # both set: the store was keyed with the deprecated one, which the service read before
    both = {DEPRECATED_KEY_ENV: text, KEY_ENV: "a different secret for manifests"}
    with pytest.warns(FutureWarning):
        assert store_pseudonymizer(None, tmp_path, both).key(UID) == CONFIGURED


def test_a_store_keyed_by_its_key_file_keeps_it(tmp_path, caplog):
    """Before, ``labral serve`` did not read $LABRAL_PSEUDONYM_KEY: a state_dir with a key
    file was keyed with that file even when the variable was set for ``labral manifest``."""
    (tmp_path / KEY_FILE).write_bytes(KEY_FILE_BYTES)
    kept = store_pseudonymizer(None, tmp_path, {KEY_ENV: "set for labral manifest"})
    assert kept.key(UID) == FROM_KEY_FILE
    assert "holds the key this store was made with" in caplog.text
    assert store_pseudonymizer("explicit", tmp_path, {}).key(UID) != FROM_KEY_FILE


def test_the_store_secret_is_read_as_given_like_before(tmp_path):
    """A secret from a file often ends in a newline; the service always hashed it as given."""
    with pytest.warns(FutureWarning):
        old = store_pseudonymizer(None, tmp_path, {DEPRECATED_KEY_ENV: "a configured secret\n"})
    assert old.key(UID) != CONFIGURED  # the newline is part of the key, as before
    assert old.key(UID) == store_pseudonymizer("a configured secret\n", tmp_path, {}).key(UID)
    same = store_pseudonymizer(None, tmp_path, {KEY_ENV: "a configured secret\n"})
    assert same.key(UID) == old.key(UID)  # following the deprecation warning keeps the keys


def test_the_manifest_reads_only_the_one_variable(monkeypatch):
    monkeypatch.setenv(KEY_ENV, f"  {MANIFEST_KEY.decode()}\n")
    monkeypatch.setenv(DEPRECATED_KEY_ENV, "another key, of the results store")
    assert load_key(None) == MANIFEST_KEY  # stripped, as labral manifest read it before
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BadConfigError, match="no pseudonym key"):
        load_key(None)  # never the results store's secret
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(BadConfigError, match=KEY_ENV):
        load_key(None)
    assert pseudonyms.KEY_ENV == "LABRAL_PSEUDONYM_KEY"
