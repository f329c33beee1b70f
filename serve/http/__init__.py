"""The HTTP side of the scoring service: the app, its routes, errors, uploads and page."""
