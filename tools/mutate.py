"""Mutation check: change one thing at a time in the security-critical modules and see whether
the tests that should notice it do.

    python3 tools/mutate.py                       # every target module, 2 jobs
    python3 tools/mutate.py server/lockout.py     # one module
    python3 tools/mutate.py --list server/lockout.py  # the mutants, without running anything
    python3 tools/mutate.py --only 3,7 server/lockout.py  # re-check two survivors

Each mutant is one small change found in the module's syntax tree (a comparison or boolean
operator turned around, a constant changed, a condition negated, a statement that awaits
something removed, a returned value dropped). It is written into a copy of the repository, and
the tests mapped to its module run there with ``-x`` (the first failure kills it). A mutant no
test kills *survives*: it is listed with its line, so a person can add the missing test or note
why the change is equivalent (it cannot change behaviour). The report goes to stdout and, with
``--report FILE``, to a Markdown file.

Why not mutmut: it rewrites every function into a trampoline and runs the tests in-process with
its own import hooks, while these tests start real ``mfa-server`` and ``mock-radius`` processes
that import the code from the working tree; a copy per job with the mutant written in place
tests exactly what the processes run.
"""

from __future__ import annotations

import argparse
import ast
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent

# module -> the tests that should notice a change in it (fast ones first: -x stops early)
TARGETS: dict[str, list[str]] = {
    "server/service.py": ["tests/test_radius_units.py", "tests/test_api22.py",
                          "tests/test_login_flow.py", "tests/test_lockout.py",
                          "tests/test_errors.py", "tests/test_challenge_rounds.py",
                          "tests/test_multiprocess.py", "tests/test_shared_accounts.py",
                          "tests/test_attacks.py", "tests/test_e2e_radius.py"],
    "server/lockout.py": ["tests/test_lockout.py", "tests/test_shared_accounts.py",
                          "tests/test_attacks.py"],
    "server/push_limit.py": ["tests/test_shared_accounts.py"],
    "server/tokens.py": ["tests/test_login_flow.py", "tests/test_api22.py"],
    "server/push_join.py": ["tests/test_push_join.py", "tests/test_multiprocess.py",
                            "tests/test_e2e_radius.py"],
    "server/keys.py": ["tests/test_keys.py"],
    "server/mfa/totp.py": ["tests/test_totp.py", "tests/test_login_flow.py"],
    "server/mfa/builtin.py": ["tests/test_builtin_totp.py", "tests/test_login_flow.py",
                              "tests/test_totp.py", "tests/test_api22.py", "tests/test_lockout.py",
                              "tests/test_attacks.py"],
    "server/mfa/radius.py": ["tests/test_radius_units.py", "tests/test_radius_wire.py",
                             "tests/test_e2e_radius.py"],
    "server/mfa/radius_client.py": ["tests/test_radius_wire.py", "tests/test_radius_units.py",
                                    "tests/test_e2e_radius.py"],
    "server/mfa/sealed_state.py": ["tests/test_radius_units.py", "tests/test_e2e_radius.py"],
    "server/store/sql.py": ["tests/test_store.py", "tests/test_api22.py"],
    "server/store/sqlite.py": ["tests/test_store.py"],
    "server/store/postgres.py": ["tests/test_store.py"],
    "server/store/schema.py": ["tests/test_store.py"],
    "mock_radius/matching.py": ["tests/test_mock_engine.py", "tests/test_mock_units.py",
                                "tests/test_mock_scenarios.py", "tests/test_mock_server.py"],
    "mock_radius/protocol.py": ["tests/test_mock_protocol.py", "tests/test_mock_units.py",
                                "tests/test_mock_clients.py", "tests/test_mock_scenarios.py",
                                "tests/test_mock_server.py", "tests/test_mock_floods.py"],
    "mock_radius/faults.py": ["tests/test_mock_faults.py", "tests/test_mock_protocol.py"],
    "radius_codec/packet.py": ["tests/radius_codec/test_packet.py",
                               "tests/radius_codec/test_authenticators.py",
                               "tests/test_mock_protocol.py", "tests/test_radius_units.py"],
    "radius_codec/authenticators.py": ["tests/radius_codec/test_authenticators.py",
                                       "tests/test_mock_protocol.py",
                                       "tests/test_radius_units.py"],
    "radius_codec/passwords.py": ["tests/radius_codec/test_passwords.py",
                                  "tests/test_mock_request_view.py"],
}  # fmt: skip

SWAPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And,
    ast.Add: ast.Sub, ast.Sub: ast.Add,
}  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the n-th mutation point of the module, in walk order
    line: int
    description: str


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Docstrings, decorators and annotations: nothing there is behaviour worth mutating."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                found.update(id(inner) for inner in ast.walk(decorator))
        annotation = getattr(node, "annotation", None) or getattr(node, "returns", None)
        if isinstance(annotation, ast.AST):
            found.update(id(inner) for inner in ast.walk(annotation))
    return found


def _points(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, kind, description) for every place a mutation can go, in a stable order."""
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                if type(op) in SWAPS:
                    yield (
                        node,
                        f"compare:{position}",
                        f"{type(op).__name__} -> {SWAPS[type(op)].__name__}",
                    )
        elif isinstance(node, ast.BoolOp):
            yield node, "boolop", f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
            yield node, "binop", f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", "drop `not`"
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                yield node, "bool", f"{node.value} -> {not node.value}"
            elif isinstance(node.value, int | float) and not isinstance(node.value, bool):
                yield node, "number", f"{node.value!r} -> {node.value + 1!r}"
        elif isinstance(node, ast.If | ast.While):
            yield node, "negate", "negate the condition"
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Await):
            yield node, "drop", "drop the awaited statement"
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            yield node, "return", "return None instead"


def mutants_of(module: str, root: Path = ROOT) -> list[Mutant]:
    tree = ast.parse((root / module).read_text())
    return [
        Mutant(module, index, getattr(node, "lineno", 0), description)
        for index, (node, _kind, description) in enumerate(_points(tree))
    ]


def mutated_source(module: str, index: int, original: str) -> str:
    tree = ast.parse(original)
    for position, (node, kind, _description) in enumerate(_points(tree)):
        if position != index:
            continue
        if kind.startswith("compare:"):
            at = int(kind.split(":")[1])
            assert isinstance(node, ast.Compare)
            node.ops[at] = cast(ast.cmpop, SWAPS[type(node.ops[at])]())
        elif kind in ("boolop", "binop"):
            assert isinstance(node, ast.BoolOp | ast.BinOp)
            node.op = SWAPS[type(node.op)]()  # type: ignore[assignment]  # same kind of operator
        elif kind == "not":
            assert isinstance(node, ast.UnaryOp)
            _replace(tree, node, node.operand)
        elif kind == "bool":
            assert isinstance(node, ast.Constant)
            node.value = not node.value
        elif kind == "number":
            assert isinstance(node, ast.Constant) and isinstance(node.value, int | float)
            node.value = node.value + 1
        elif kind == "negate":
            assert isinstance(node, ast.If | ast.While)
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        elif kind == "drop":
            _replace(tree, node, ast.Pass())
        elif kind == "return":
            assert isinstance(node, ast.Return)
            node.value = ast.Constant(value=None)
        return ast.unparse(ast.fix_missing_locations(tree))
    raise IndexError(index)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                setattr(parent, name, [new if item is old else item for item in value])
                return


def _workspace(base: Path) -> Path:
    """A copy of what the tests need, so a mutant never touches the working tree."""
    copy_dir = Path(tempfile.mkdtemp(prefix="mutate-", dir=base))
    plugins = [path.name for path in ROOT.glob("pytest_*.py")]  # the pytest11 modules
    for name in ("server", "mock_radius", "radius_codec", "mfa_shared", "scenarios", "tests",
                 "pyproject.toml", "bench",
                 "docs", "README.md", "docker", ".ci", "LICENSE", *plugins):  # fmt: skip
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, copy_dir / name)
    _link_import_names(copy_dir)
    return copy_dir


def _link_import_names(workspace: Path) -> None:
    """A folder that pyproject.toml installs under another import name (``package-dir``) is
    linked under that name too, so the tests' processes, which import the copy through
    PYTHONPATH, find it as an install would (and run the mutant through it)."""
    setuptools = tomllib.loads((workspace / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in setuptools.get("package-dir", {}).items():
        link = workspace.joinpath(*package.split("."))
        if not link.exists():
            link.symlink_to(workspace / folder, target_is_directory=True)


def run_mutant(
    mutant: Mutant, free: queue.Queue[Path], timeout: float
) -> tuple[Mutant, str, float]:
    """'killed', 'survived' or 'timeout' (a test that hangs on a mutant has noticed it too)."""
    workspace = free.get()
    try:
        return _run_in(mutant, workspace, timeout)
    finally:
        free.put(workspace)


def _run_in(mutant: Mutant, workspace: Path, timeout: float) -> tuple[Mutant, str, float]:
    target = workspace / mutant.module
    original = target.read_text()  # the copy's: edits in the working tree meanwhile change nothing
    target.write_text(mutated_source(mutant.module, mutant.index, original))
    started = time.monotonic()
    try:
        result = _pytest(workspace, TARGETS[mutant.module], timeout)
        verdict = "survived" if result.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        target.write_text(original)
    return mutant, verdict, time.monotonic() - started


def _pytest(workspace: Path, tests: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """In a session of its own, so a timeout stops the servers its tests started as well."""
    env = {**os.environ, "PYTHONPATH": str(workspace), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    with subprocess.Popen(
        command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    ) as child:  # fmt: skip
        try:
            output, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise
    return subprocess.CompletedProcess(command, child.returncode, output, "")


def baseline_failure(workspace: Path, modules: list[str]) -> str | None:
    """Every mutant counts as killed when the tests fail anyway (no PostgreSQL, a missing
    package), so the unmutated tests must pass first; returns their report if they do not."""
    tests = list(dict.fromkeys(test for module in modules for test in TARGETS[module]))
    result = _pytest(workspace, tests, timeout=3600)
    return None if result.returncode == 0 else result.stdout[-3000:]  # stderr merged into it


def _postgres() -> Callable[[], None]:
    """One throwaway PostgreSQL for every run (.ci/start-postgres); returns how to stop it."""
    started = subprocess.run(["bash", str(ROOT / ".ci" / "start-postgres")],
                             capture_output=True, text=True, check=True)  # fmt: skip
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    os.environ["MFA_TEST_POSTGRES_URL"] = exports["MFA_TEST_POSTGRES_URL"]

    def stop() -> None:
        command = [f"{exports['MFA_TEST_POSTGRES_BIN']}/pg_ctl", "-D",
                   exports["MFA_TEST_POSTGRES_DATA"], "-m", "immediate", "stop"]  # fmt: skip
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, capture_output=True)
        shutil.rmtree(Path(exports["MFA_TEST_POSTGRES_DATA"]).parent, ignore_errors=True)

    return stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="default: every target")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--report", help="also write the survivors as Markdown to this file")
    parser.add_argument("--only", type=lambda text: {int(n) for n in text.split(",")},
                        help="only these mutant numbers (as --list shows them), e.g. 16,18: "
                             "to re-check survivors after adding a test")  # fmt: skip
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmutated tests that comes first")  # fmt: skip
    args = parser.parse_args()
    modules = args.modules or list(TARGETS)
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        parser.error(f"no tests mapped for {unknown}; known: {', '.join(TARGETS)}")
    mutants = [m for module in modules for m in mutants_of(module)]
    if args.only is not None:
        mutants = [m for m in mutants if m.index in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.module}:{m.line}: #{m.index} {m.description}")
        return 0
    base = Path(tempfile.mkdtemp(prefix="mutation-"))
    free: queue.Queue[Path] = queue.Queue()
    for _ in range(args.jobs):
        free.put(_workspace(base))
    results: list[tuple[Mutant, str, float]] = []
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the PostgreSQL and the copies go and the partial
    # results are still reported
    signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    postgres = _postgres() if "MFA_TEST_POSTGRES_URL" not in os.environ else None
    pool = ThreadPoolExecutor(args.jobs)
    try:
        if not args.no_baseline:
            failure = baseline_failure(free.queue[0], modules)
            if failure is not None:
                print(f"the unmutated tests fail, so no mutant can be judged:\n{failure}")
                return 1
        futures = [pool.submit(run_mutant, m, free, args.timeout) for m in mutants]
        for future in futures:
            mutant, verdict, seconds = future.result()
            results.append((mutant, verdict, seconds))
            print(f"{verdict:8} {seconds:6.1f}s {mutant.module}:{mutant.line} "
                  f"#{mutant.index} {mutant.description}", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        print(f"interrupted after {len(results)} of {len(mutants)} mutants", flush=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(base, ignore_errors=True)
        if postgres is not None:
            postgres()
    report = summary(results, time.monotonic() - started)
    print(report)
    if args.report:
        Path(args.report).write_text(report)
    return 0 if len(results) == len(mutants) else 130


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def summary(results: list[tuple[Mutant, str, float]], seconds: float) -> str:
    lines = ["| module | mutants | killed | survived | score |", "|---|---|---|---|---|"]
    for module in dict.fromkeys(m.module for m, _, _ in results):
        verdicts = [v for m, v, _ in results if m.module == module]
        killed = sum(v != "survived" for v in verdicts)
        lines.append(f"| `{module}` | {len(verdicts)} | {killed} | {len(verdicts) - killed} "
                     f"| {killed / len(verdicts):.0%} |")  # fmt: skip
    total = len(results)
    killed = sum(v != "survived" for _, v, _ in results)
    lines.append(f"| all | {total} | {killed} | {total - killed} | {killed / max(total, 1):.0%} |")
    lines.append("")
    lines.append(f"Survivors ({seconds / 60:.0f} min):")
    lines += [f"- `{m.module}:{m.line}` #{m.index}: {m.description}"
              for m, v, _ in results if v == "survived"]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
