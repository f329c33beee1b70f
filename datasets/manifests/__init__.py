"""Manifests of clips: reading, building one from a folder, splits, pseudonyms."""
