"""Property-based fuzzing of the whole CLI with damaged files.

Hypothesis damages the seeds of tests/fuzz_corpus.py (bit flips, zeroed,
duplicated and swapped runs, truncation, noise in the header) and runs the real
command in-process on each mutant, in a fresh folder. Whatever the damage:

- `main` returns an int and raises nothing (not even SystemExit);
- the exit code is never ExitCode.INTERNAL (a traceback in a crash log);
- exit 0 only with a complete output that decodes from start to end (with the
  input's frame count where the input itself decodes cleanly);
- a non-zero exit leaves no output and no `*.partial*` file;
- the inputs' bytes are unchanged;
- every case ends within CASE_TIMEOUT_S (the stacks are dumped when not).

Profiles (CLIPSWAP_FUZZ_PROFILE): `ci`, the default, a fixed-seed run of a few
hundred cases (a few minutes on 2 cores); `long` (`make fuzz`), thousands of
random cases that keep failures in .hypothesis/ (git-ignored) for a rerun.
Each failure found lives on as a named file under tests/data/fuzz/ and an
xfail test in tests/test_damaged_files.py.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_corpus import Corpus, build_corpus, frames_decoded
from hypothesis import HealthCheck, given, note, reject, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from clipswap_video.cli import main
from clipswap_video.errors import ExitCode

CASE_TIMEOUT_S = 30.0
HEAD = 2048  # "the header": where noise hurts most containers
_REPOSITORY = Path(__file__).resolve().parents[1]
FINDINGS = _REPOSITORY / ".hypothesis" / "findings"

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, suppress_health_check=_HEALTH
)
settings.register_profile(
    "long",
    deadline=None,
    database=DirectoryBasedExampleDatabase(_REPOSITORY / ".hypothesis" / "examples"),
    suppress_health_check=_HEALTH,
)
PROFILE = os.environ.get("CLIPSWAP_FUZZ_PROFILE", "ci")
settings.load_profile(PROFILE)
_SCALE = {"ci": 1, "long": 20}[PROFILE]


def cases(ci: int) -> settings:
    """`ci` cases under the ci profile, 20 times as many under `long`."""
    return settings(max_examples=ci * _SCALE)


pytestmark = pytest.mark.slow


# -- mutations ---------------------------------------------------------------

Mutation = Callable[[st.DrawFn, bytearray], bytearray]


def _offset(draw: st.DrawFn, data: bytearray, end: int | None = None) -> int:
    return draw(st.integers(0, max(min(len(data), end or len(data)) - 1, 0)))


def bit_flip(draw: st.DrawFn, data: bytearray) -> bytearray:
    if data:
        data[_offset(draw, data)] ^= 1 << draw(st.integers(0, 7))
    return data


def zeroed_run(draw: st.DrawFn, data: bytearray) -> bytearray:
    start, size = _offset(draw, data), draw(st.integers(1, 512))
    data[start : start + size] = bytes(len(data[start : start + size]))
    return data


def duplicated_run(draw: st.DrawFn, data: bytearray) -> bytearray:
    start, size = _offset(draw, data), draw(st.integers(1, 1024))
    at = draw(st.integers(0, len(data)))
    data[at:at] = data[start : start + size]
    return data


def truncated(draw: st.DrawFn, data: bytearray) -> bytearray:
    return data[: draw(st.integers(0, len(data)))]


def swapped_chunks(draw: st.DrawFn, data: bytearray) -> bytearray:
    size = draw(st.integers(1, max(len(data) // 4, 1)))
    first = draw(st.integers(0, max(len(data) - 2 * size, 0)))
    second = draw(st.integers(first + size, max(len(data) - size, first + size)))
    a, b = bytes(data[first : first + size]), bytes(data[second : second + size])
    data[second : second + len(b)] = a[: len(b)]
    data[first : first + len(a)] = b + a[len(b) :]
    return data


def head_noise(draw: st.DrawFn, data: bytearray) -> bytearray:
    noise = draw(st.binary(min_size=1, max_size=16))
    start = _offset(draw, data, end=HEAD)
    data[start : start + len(noise)] = noise
    return data


MUTATIONS: dict[str, Mutation] = {
    "bit_flip": bit_flip,
    "zeroed_run": zeroed_run,
    "duplicated_run": duplicated_run,
    "truncated": truncated,
    "swapped_chunks": swapped_chunks,
    "head_noise": head_noise,
}


@dataclass(frozen=True)
class Mutant:
    """A damaged seed; its repr is short (a failing case prints it)."""

    seed: str
    data: bytes
    steps: tuple[str, ...]

    def __repr__(self) -> str:
        sha = hashlib.sha256(self.data).hexdigest()[:12]
        return f"Mutant({self.seed!r}, {list(self.steps)}, {len(self.data)} bytes, sha256 {sha})"

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:  # Hypothesis' printer
        printer.text(repr(self))  # type: ignore[attr-defined]

    def save(self, test: str) -> Path:
        """Keeps the mutant under .hypothesis/findings/ (the last one written for a
        test is the shrunk example Hypothesis replays at the end)."""
        folder = FINDINGS / test
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"last{Path(self.seed).suffix}"
        path.write_bytes(self.data)
        return path


@st.composite
def mutants(draw: st.DrawFn, seeds: dict[str, bytes]) -> Mutant:
    """A seed after one to four mutations."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    steps = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=4))
    for step in steps:
        data = MUTATIONS[step](draw, data)
    return Mutant(name, bytes(data), tuple(steps))


@contextlib.contextmanager
def kept_on_failure(mutant: Mutant, test: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        note(f"mutant saved to {mutant.save(test)}")
        raise


# -- running one case --------------------------------------------------------


@dataclass
class Outcome:
    code: object
    stdout: str
    stderr: str
    crash_log: str
    seconds: float


def run_cli(args: Sequence[object], crash_folder: Path) -> Outcome:
    """Runs `main(args)` in a worker thread with a time box; crash logs land in
    `crash_folder` (tempfile.gettempdir is pointed there) and come back as text."""
    crash_folder.mkdir(exist_ok=True)
    result: dict[str, object] = {}
    out, err = io.StringIO(), io.StringIO()

    def target() -> None:
        try:
            result["code"] = main([str(arg) for arg in args])
        except BaseException as error:  # noqa: B036 - anything escaping main is a finding
            result["escaped"] = error

    previous_tempdir = tempfile.tempdir
    tempfile.tempdir = str(crash_folder)
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            worker = threading.Thread(target=target, daemon=True, name="fuzz-case")
            worker.start()
            worker.join(CASE_TIMEOUT_S)
    finally:
        tempfile.tempdir = previous_tempdir
    seconds = time.monotonic() - start
    if worker.is_alive():
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        pytest.fail(f"main({list(map(str, args))}) still running after {CASE_TIMEOUT_S} s")
    if "escaped" in result:
        error = result["escaped"]
        raise AssertionError(f"main raised {type(error).__name__}: {error}") from error
    logs = "\n".join(p.read_text() for p in sorted(crash_folder.glob("clipswap-video-*.log")))
    return Outcome(result["code"], out.getvalue(), err.getvalue(), logs, seconds)


def check_exit(outcome: Outcome) -> int:
    code = outcome.code
    assert isinstance(code, int) and not isinstance(code, bool), f"main returned {code!r}"
    assert code != ExitCode.INTERNAL, f"exit 1 (INTERNAL)\n{outcome.stderr}\n{outcome.crash_log}"
    assert not outcome.crash_log, outcome.crash_log
    return code


def check_outputs(
    code: int, folder: Path, output: Path, frames: int | None, *, lost_said: bool = False
) -> None:
    """Exit 0: only `output`, decoding whole (`frames` of them when known, fewer
    only when the job said it dropped some: `lost_said`); else nothing."""
    names = sorted(p.name for p in folder.iterdir())
    if code != ExitCode.OK:
        assert names == [], f"exit {code} left {names}"
        return
    assert names == [output.name], f"exit 0 left {names}"
    try:
        decoded = frames_decoded(output)
    except Exception as error:  # noqa: BLE001 - any decoding failure is the finding
        raise AssertionError(f"exit 0 but {output.name} does not decode: {error!r}") from error
    assert decoded > 0, "exit 0 with an output of no frames"
    if frames is not None and not (lost_said and decoded < frames):
        assert decoded == frames, f"exit 0 with {decoded} frames, the input decodes to {frames}"


def digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def clean_frames(path: Path) -> int | None:
    """The input's frames when PyAV decodes it without an error, else None."""
    try:
        return frames_decoded(path)
    except Exception:  # noqa: BLE001 - damaged: the count is unknown
        return None


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("seeds"))


def _bytes(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items()}


@contextlib.contextmanager
def case_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _output_name(seed: str) -> str:
    """The input's container, except webm (the default H.264 encoder cannot go in it,
    a finding of its own: test_damaged_files.py)."""
    suffix = Path(seed).suffix
    return "out" + (".mkv" if suffix == ".webm" else suffix)


# -- the properties ----------------------------------------------------------


def _swap_case(corpus: Corpus, name: str, data: bytes, extra: Sequence[str]) -> None:
    with case_folder() as folder:
        clip = folder / ("in" + Path(name).suffix)
        clip.write_bytes(data)
        outputs = folder / "out"
        outputs.mkdir()
        output = outputs / _output_name(name)
        before = digest(clip, corpus.source)
        frames = clean_frames(clip)
        # Tolerated damage is said in warnings, which -q would hide.
        quiet = [] if "--tolerate-errors" in extra else ["-q"]
        args = [corpus.source, clip, output, "--swapper", "none", *quiet, *extra]
        outcome = run_cli(args, folder / "tmp")
        code = check_exit(outcome)
        note(f"exit {code} in {outcome.seconds:.2f} s; input frames {frames}\n{outcome.stderr}")
        lost_said = any(word in outcome.stderr for word in ("dropped", "skipped"))
        check_outputs(code, outputs, output, frames, lost_said=lost_said)
        assert digest(clip, corpus.source) == before, "an input was written to"


@pytest.fixture(scope="module")
def clip_seeds(corpus: Corpus) -> dict[str, bytes]:
    return _bytes(corpus.clips)


def test_damaged_clip_swap(corpus: Corpus, clip_seeds: dict[str, bytes]) -> None:
    @cases(ci=110)
    @given(mutants(clip_seeds))
    def case(mutant: Mutant) -> None:
        with kept_on_failure(mutant, "clip_swap"):
            _swap_case(corpus, mutant.seed, mutant.data, extra=[])

    case()


def test_damaged_clip_swap_tolerating_errors(corpus: Corpus, clip_seeds: dict[str, bytes]) -> None:
    @cases(ci=90)
    @given(mutants(clip_seeds))
    def case(mutant: Mutant) -> None:
        with kept_on_failure(mutant, "clip_swap_tolerating"):
            _swap_case(corpus, mutant.seed, mutant.data, extra=["--tolerate-errors"])

    case()


def test_damaged_clip_probe(corpus: Corpus, clip_seeds: dict[str, bytes]) -> None:
    @cases(ci=60)
    @given(mutants(clip_seeds))
    def case(mutant: Mutant) -> None:
        name, data = mutant.seed, mutant.data
        with kept_on_failure(mutant, "probe"), case_folder() as folder:
            clip = folder / ("in" + Path(name).suffix)
            clip.write_bytes(data)
            outcome = run_cli(["probe", clip, "--json"], folder / "tmp")
            code = check_exit(outcome)
            if code == ExitCode.OK:
                info = json.loads(outcome.stdout)
                assert isinstance(info, dict) and "streams" in info, outcome.stdout
            assert clip.read_bytes() == data, "probe wrote to its input"
            assert sorted(p.name for p in folder.iterdir()) == [clip.name, "tmp"]

    case()


def test_damaged_source_photo(corpus: Corpus) -> None:
    seeds = _bytes(corpus.images)

    @cases(ci=35)
    @given(mutants(seeds))
    def case(mutant: Mutant) -> None:
        name, data = mutant.seed, mutant.data
        with kept_on_failure(mutant, "source_photo"), case_folder() as folder:
            photo = folder / ("source" + Path(name).suffix)
            photo.write_bytes(data)
            outputs = folder / "out"
            outputs.mkdir()
            output = outputs / "out.mp4"
            before = digest(photo, corpus.target)
            args = [photo, corpus.target, output, "--swapper", "classic", "-q"]
            outcome = run_cli(args, folder / "tmp")
            code = check_exit(outcome)
            note(f"exit {code} in {outcome.seconds:.2f} s\n{outcome.stderr}")
            check_outputs(code, outputs, output, frames_decoded(corpus.target))
            assert digest(photo, corpus.target) == before, "an input was written to"

    case()


def test_damaged_config(corpus: Corpus) -> None:
    seeds = {"config.toml": corpus.tomls["config.toml"].read_bytes()}

    @cases(ci=30)
    @given(mutants(seeds))
    def case(mutant: Mutant) -> None:
        data = mutant.data
        with kept_on_failure(mutant, "config"), case_folder() as folder:
            config = folder / "config.toml"
            config.write_bytes(data)
            outputs = folder / "out"
            outputs.mkdir()
            output = outputs / "out.mp4"
            before = digest(config, corpus.source, corpus.target)
            args = [corpus.source, corpus.target, output, "--config", config, "-q"]
            outcome = run_cli(args, folder / "tmp")
            code = check_exit(outcome)
            note(f"exit {code} in {outcome.seconds:.2f} s\n{outcome.stderr}")
            check_outputs(code, outputs, output, frames_decoded(corpus.target))
            assert digest(config, corpus.source, corpus.target) == before

    case()


def _stays_inside(data: bytes) -> None:
    """Rejects a jobs file that names a path outside its folder (an absolute one,
    `..`, `~`): the batch would read or write the machine's files."""
    try:
        document = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    if any(t.startswith(("/", "~", "\\")) or ".." in t or ":" in t for t in texts):
        reject()


def _jobs_case(corpus: Corpus, data: bytes, extra: Sequence[str]) -> None:
    _stays_inside(data)
    with case_folder() as folder:
        jobs = folder / "jobs.toml"
        jobs.write_bytes(data)
        shutil.copy(corpus.source, folder / "source.jpg")
        shutil.copy(corpus.target, folder / "in.mp4")
        inputs = [jobs, folder / "source.jpg", folder / "in.mp4"]
        before = digest(*inputs)
        outcome = run_cli(["batch", jobs, "-q", *extra], folder / "tmp")
        code = check_exit(outcome)
        note(f"exit {code} in {outcome.seconds:.2f} s\n{outcome.stderr}")
        assert digest(*inputs) == before, "an input was written to"
        partial = [p for p in folder.rglob("*") if ".partial" in p.name]
        assert partial == [], f"exit {code} left {partial}"
        videos = [p for p in folder.rglob("*") if p.suffix in {".mp4", ".mkv"} and p not in inputs]
        for video in videos:
            assert code == ExitCode.OK or "out" in video.parts, video
            frames_decoded(video)  # a finished output decodes whole


def test_damaged_jobs_file_dry_run(corpus: Corpus) -> None:
    seeds = {"jobs.toml": corpus.tomls["jobs.toml"].read_bytes()}

    @cases(ci=40)
    @given(mutants(seeds))
    def case(mutant: Mutant) -> None:
        with kept_on_failure(mutant, "jobs_dry_run"):
            _jobs_case(corpus, mutant.data, ["--dry-run"])

    case()


def test_damaged_jobs_file_run(corpus: Corpus) -> None:
    seeds = {"jobs.toml": corpus.tomls["jobs.toml"].read_bytes()}

    @cases(ci=8)
    @given(mutants(seeds))
    def case(mutant: Mutant) -> None:
        with kept_on_failure(mutant, "jobs_run"):
            _jobs_case(corpus, mutant.data, ["--workers", "1", "--swapper", "none"])

    case()
