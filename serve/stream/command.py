"""``labral stream``'s command line (the client itself is serve/stream/client.py).

    labral stream CLIP --server URL [--realtime] [--every K] [--api-key KEY] [--sr OUT.dcm]
    labral stream --device SPEC [--format FMT] [--seconds S] --server URL

Exit status 0 with the result printed as JSON; 2 when the server refused or ended the
session with an error, or the clip or device cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labral.datasets.io.reader import read_cine
from labral.errors import LabralError
from labral.serve.stream.client import (
    StreamRun,
    device_frames,
    dicom_header,
    stream_frames,
    update_line,
)


def parser() -> argparse.ArgumentParser:
    """The arguments of ``labral stream``."""
    p = argparse.ArgumentParser(
        prog="labral stream",
        description="Live scoring: replay a recorded cine, or send a capture device or "
        "network stream, to a labral server's /v1/stream and print its updates.",
    )
    p.add_argument("clip", nargs="?", help="a recorded cine (DICOM, MP4, AVI, MOV, .npy)")
    p.add_argument("--device", help="a capture device or stream FFmpeg opens (PyAV)")
    p.add_argument("--format", dest="fmt", help="FFmpeg input format of --device (v4l2, ...)")
    p.add_argument("--seconds", type=float, help="stop --device after this many seconds")
    p.add_argument("--server", default="http://127.0.0.1:8000", help="the labral server")
    p.add_argument("--realtime", action="store_true", help="send at the clip's frame rate")
    p.add_argument("--every", type=int, default=1, help="an update every K frames")
    p.add_argument(
        "--api-key", default=os.environ.get("LABRAL_API_KEY"), help="(env LABRAL_API_KEY)"
    )
    p.add_argument("--sr", type=Path, help="write the result's DICOM SR here (a DICOM CLIP)")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    return p


def _print(quiet: bool) -> Any:
    def show(message: dict[str, Any]) -> None:
        line = update_line(message)
        if line and not quiet:
            print(line, flush=True)

    return show


def run(args: argparse.Namespace) -> StreamRun:
    """Open the source named by ``args`` and stream it (see :func:`stream_frames`).

    Raises:
        LabralError: the clip cannot be read.
    """
    common = {
        "realtime": args.realtime,
        "update_every": args.every,
        "api_key": args.api_key,
        "on_message": _print(args.quiet),
    }
    if args.device:
        frames, fps, (height, width) = device_frames(args.device, args.fmt, args.seconds)
        return asyncio.run(
            stream_frames(args.server, frames, fps=fps, height=height, width=width, **common)
        )
    clip = read_cine(args.clip)
    header = dicom_header(args.clip) if args.sr else None
    height, width = clip.frames.shape[1:]
    return asyncio.run(
        stream_frames(
            args.server,
            clip.frames,
            fps=clip.fps,
            height=height,
            width=width,
            spacing_mm=clip.spacing_mm,
            dicom_header=header,
            **common,
        )
    )


def main(argv: Sequence[str]) -> int:
    """``labral stream ...``: returns the exit status."""
    p = parser()
    try:
        args = p.parse_args(list(argv))
        if bool(args.clip) == bool(args.device):
            p.error("give either a CLIP to replay or --device SPEC")
    except SystemExit as stop:  # --help (0) or a usage error (2), printed by argparse
        return int(stop.code or 0)
    try:
        result = run(args)
    except LabralError as error:
        print(f"labral: error [{error.code}]: {error.message}", file=sys.stderr)
        return 2
    except OSError as error:  # the server or the device cannot be reached
        print(f"labral: error [unreachable]: {error}", file=sys.stderr)
        return 2
    if result.error is not None:
        print(f"labral: error [{result.error['code']}]: {result.error['message']}", file=sys.stderr)
    if result.result is not None:
        print(json.dumps({k: v for k, v in result.result.items() if k != "sr"}, indent=2))
        if args.sr and result.result.get("sr"):
            args.sr.write_bytes(base64.b64decode(result.result["sr"]))
            print(f"SR written to {args.sr}", file=sys.stderr)
    return 0 if result.error is None and result.result is not None else 2
