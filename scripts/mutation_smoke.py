"""Mutation smoke test: break the product on purpose, one named way at a time, and check that
the tests notice.

    .venv/bin/python scripts/mutation_smoke.py              # every mutation (~5 min idle)
    .venv/bin/python scripts/mutation_smoke.py --list       # names, edits and tests
    .venv/bin/python scripts/mutation_smoke.py --only optimizer-step-noop rng-restore-removed
    .venv/bin/python scripts/mutation_smoke.py --keep       # keep the copy and pytest logs
    .venv/bin/python scripts/mutation_smoke.py --ref HEAD   # the last commit, not the tree

Each mutation is a small text edit of the product source (e.g. ``optimizer.step()`` ->
``pass``) plus the tests that must catch it; the table of them is ``scripts/mutations.py``.
For each one the script applies the edit, runs those tests with pytest, undoes the edit, and
finally prints a table::

    mutation -> tests run -> failed?

It exits 1 if any mutation survived (its tests passed) or if an edit no longer matches the
source (the mutation is stale and must be updated), and 2 if the tests fail even without any
mutation (the baseline run first, skipped with ``--no-baseline``).

The real working tree is never written to. The script copies the working tree (tracked and
untracked, non-ignored files, as they are on disk now; or a commit, with ``--ref HEAD``)
into a temporary folder and edits only that copy. A ``sitecustomize`` module placed first on
``PYTHONPATH`` maps ``labral.*`` onto the copy the way pyproject's ``package-dir`` maps it
onto the repository, so pytest and the subprocesses the tests start (``python -m
labral.train.command``, ``torchrun``) import the copy, never the editable install. The copy
is deleted at the end, on an error, and on Ctrl-C or SIGTERM (which also stop the running
pytest). Run it with the project's venv Python.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

# scripts/ is not a package: import the mutation table from this script's own folder,
# also under PYTHONSAFEPATH=1 or python -P (which leave it off sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import MUTATIONS, Mutation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


SITECUSTOMIZE = '''"""Written by scripts/mutation_smoke.py: labral.* comes from the copy."""
import sys
from importlib.util import spec_from_file_location

MAPPING = {mapping!r}


class _MutationCopyFinder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        folder = MAPPING.get(fullname)
        if folder is None:
            return None
        return spec_from_file_location(
            fullname, folder + "/__init__.py", submodule_search_locations=[folder]
        )


sys.meta_path.insert(0, _MutationCopyFinder)
'''


def working_tree_files(repo: Path) -> list[str]:
    """Tracked and untracked, non-ignored files of the working tree, as they are on disk."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return sorted({name for name in out.split("\0") if name and (repo / name).is_file()})


def make_copy(repo: Path, workdir: Path, ref: str | None = None) -> tuple[Path, dict[str, str]]:
    """Copy the working tree (or commit ``ref``) into ``workdir/repo`` and write the
    ``sitecustomize`` that maps labral onto it; returns the copy and the environment that
    selects it."""
    copy = workdir / "repo"
    copy.mkdir()
    if ref is not None:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref], cwd=repo, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
    else:
        for name in working_tree_files(repo):
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, target)
    pyproject = tomllib.loads((copy / "pyproject.toml").read_text())
    package_dir = pyproject["tool"]["setuptools"]["package-dir"]
    mapping = {pkg: str(copy / folder) for pkg, folder in package_dir.items()}
    site = workdir / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(mapping=mapping))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # no .pyc of a mutated file can outlive its edit
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import labral.train.loop as m; print(m.__file__)"],
        env=env,
        cwd=copy,
        capture_output=True,
        text=True,
    )
    if not probe.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"the copy is not what labral imports: {probe.stdout}{probe.stderr}")
    return copy, env


def apply(copy: Path, mutation: Mutation) -> dict[Path, str]:
    """Apply every edit of ``mutation`` in the copy; returns the original texts.

    Raises:
        LookupError: an edit's ``old`` text does not occur exactly once (stale mutation).
    """
    originals: dict[Path, str] = {}
    for edit in mutation.edits:
        path = copy / edit.path
        text = originals.get(path) or path.read_text()
        originals.setdefault(path, text)
        current = path.read_text()
        count = current.count(edit.old)
        if count != 1:
            restore(originals)
            raise LookupError(f"{edit.path}: {edit.old.strip()!r} found {count} times")
        path.write_text(current.replace(edit.old, edit.new))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def _stop(process: subprocess.Popen) -> None:
    """Stop ``process`` and everything it started (its own session): TERM, then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=10)
            return
        except ProcessLookupError:  # already gone
            process.wait()
            return
        except subprocess.TimeoutExpired:
            continue


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_pytest(
    copy: Path, env: dict[str, str], tests: tuple[str, ...], log: Path
) -> tuple[int, str]:
    """Run pytest on ``tests`` in the copy; returns (exit status, its summary line).

    On Ctrl-C the pytest process group is stopped before KeyboardInterrupt propagates.
    """
    command = [sys.executable, "-m", "pytest", "-q", "-rf", f"--basetemp={log.with_suffix('')}"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, *tests],
            cwd=copy,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = process.wait()
        except BaseException:
            _stop(process)
            raise
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if re.search(r" in [\d.]+s", line)), "")
    return status, summary.strip("= ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and logs")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument(
        "--ref", help="test this commit (e.g. HEAD) instead of the working tree as it is now"
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = set(args.only or []) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s) {sorted(unknown)}; see --list")
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.what}")
            for edit in m.edits:
                print(f"    {edit.path}: {edit.old.strip()!r} -> {edit.new.strip()!r}")
            print(f"    tests: {' '.join(m.tests)}")
        return 0

    for sig in (signal.SIGINT, signal.SIGTERM):  # also where SIGINT was inherited ignored
        signal.signal(sig, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="labral-mutation-"))
    rows: list[tuple[str, str, str, str]] = []
    failed_overall = False
    try:
        copy, env = make_copy(REPO, workdir, args.ref)
        print(f"copy of {args.ref or 'the working tree'}: {copy}", flush=True)
        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            start = time.monotonic()
            status, summary = run_pytest(copy, env, tests, workdir / "baseline.log")
            print(f"baseline (no mutation): {summary} [{time.monotonic() - start:.0f} s]")
            if status != 0:
                print(f"the tests fail without any mutation; see {workdir / 'baseline.log'}")
                args.keep = True
                return 2
        for m in chosen:
            start = time.monotonic()
            try:
                originals = apply(copy, m)
            except LookupError as exc:
                rows.append((m.name, " ".join(m.tests), "STALE", str(exc)))
                failed_overall = True
                continue
            try:
                status, summary = run_pytest(copy, env, m.tests, workdir / f"{m.name}.log")
            finally:
                restore(originals)
            verdict = {1: "yes"}.get(status, "NO" if status == 0 else f"ERROR (pytest {status})")
            failed_overall |= verdict != "yes"
            rows.append((m.name, " ".join(m.tests), verdict, summary))
            print(f"{m.name}: failed? {verdict} ({summary}) [{time.monotonic() - start:.0f} s]")
    except KeyboardInterrupt:
        print("\ninterrupted: the working tree was never modified; removing the copy")
        return 130
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    name_width = max(len(r[0]) for r in rows)
    tests_width = max(len(r[1]) for r in rows)
    print(f"\n{'mutation':<{name_width}}  {'tests run':<{tests_width}}  failed?  pytest")
    for name, tests, verdict, summary in rows:
        print(f"{name:<{name_width}}  {tests:<{tests_width}}  {verdict:<7}  {summary}")
    survivors = [r[0] for r in rows if r[2] != "yes"]
    if survivors:
        print(f"\nnot caught: {', '.join(survivors)}")
    return 1 if failed_overall else 0


if __name__ == "__main__":
    sys.exit(main())
