"""Batch planning rules: which files of a folder become jobs, where their outputs
go, and the plans refused before anything runs (one line, nothing written).

Planning reads no media, so the "videos" here are a few bytes each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipswap_video.batch import Plan, plan_folder, plan_jobs_file
from clipswap_video.cli import main
from clipswap_video.errors import ClipswapError, ExitCode


def _files(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    return folder


def _pairs(plan: Plan, inputs: Path, outputs: Path) -> list[tuple[str, str]]:
    """The plan as (input, output) paths relative to their folders, in plan order."""
    return [
        (
            planned.job.input.relative_to(inputs).as_posix(),
            planned.job.output.relative_to(outputs).as_posix(),
        )
        for planned in plan.jobs
    ]


def _batch(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`clipswap-video batch ARGS` in this process: (exit code, stdout, stderr)."""
    code = main(["batch", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0].removeprefix("error: ")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _files(tmp_path, "src.jpg") / "src.jpg"  # planning checks only that it exists


def test_folder_skips_hidden_partial_and_its_output_folder(source: Path, tmp_path: Path) -> None:
    # IN_DIR itself below a hidden folder still counts: only entries under it are hidden.
    inputs = _files(
        tmp_path / ".projects" / "footage",
        "a.mp4",
        "sub/b.mkv",
        "LOUD.MOV",
        "notes.txt",
        ".hidden.mp4",
        ".cache/c.mp4",
        "sub/.trash/d.mp4",  # hidden entries
        "a.partial.mp4",
        "sub/b.partial.mkv",  # unfinished outputs of an earlier run
        "renders/a.mp4",
        "renders/sub/b.mkv",  # the output folder, inside IN_DIR
    )
    outputs = inputs / "renders"
    plan = plan_folder([source], inputs, outputs)
    assert _pairs(plan, inputs, outputs) == [
        ("LOUD.MOV", "LOUD.MOV"),
        ("a.mp4", "a.mp4"),
        ("sub/b.mkv", "sub/b.mkv"),
    ]
    assert plan.manifest == outputs / "clipswap-batch.sqlite"
    assert all(planned.job.sources == (source,) for planned in plan.jobs)


def test_container_changes_every_output_extension(source: Path, tmp_path: Path) -> None:
    inputs = _files(tmp_path / "in", "a.mp4", "sub/b.mov", "c.webm")
    outputs = tmp_path / "out"
    expected = [("a.mp4", "a.mkv"), ("c.webm", "c.mkv"), ("sub/b.mov", "sub/b.mkv")]
    for container in ("mkv", ".MKV"):
        plan = plan_folder([source], inputs, outputs, container)
        assert _pairs(plan, inputs, outputs) == expected


@pytest.mark.parametrize("container", ["m/kv", "", "mp4 ", "../x"])
def test_a_bad_container_is_one_line(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], container: str
) -> None:
    inputs = _files(tmp_path / "in", "a.mp4")
    code, out, err = _batch(capsys, source, inputs, tmp_path / "out", "--container", container)
    assert code == ExitCode.BAD_CONFIG_VALUE and out == ""
    assert _one_error_line(err) == "--container must be a file extension such as mp4 or mkv"
    assert not (tmp_path / "out").exists()


def test_dry_run_shows_the_plan_and_writes_nothing(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _files(tmp_path / "in", "a.mp4", ".b.mp4", "c.partial.mp4", "sub/d.mov")
    outputs = inputs / "out"
    code, out, err = _batch(
        capsys, source, inputs, outputs, "--container", "mkv", "--dry-run", "--json"
    )
    assert code == ExitCode.OK, err
    report = json.loads(out)
    assert [(job["input"], job["output"], job["action"]) for job in report["jobs"]] == [
        (str(inputs / "a.mp4"), str(outputs / "a.mkv"), "new"),
        (str(inputs / "sub/d.mov"), str(outputs / "sub/d.mkv"), "new"),
    ]
    assert report["dry_run"] is True and not outputs.exists()


def test_two_inputs_writing_one_output_is_one_line(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _files(tmp_path / "in", "a.mkv", "a.mp4", "b.mp4")
    outputs = tmp_path / "out"
    code, out, err = _batch(capsys, source, inputs, outputs, "--container", "mp4")
    assert code == ExitCode.BAD_CONFIG_VALUE and out == ""
    assert _one_error_line(err) == (
        f"{inputs / 'a.mp4'} and {inputs / 'a.mkv'} both write {outputs / 'a.mp4'}"
    )
    assert not outputs.exists()


def _jobs_file(folder: Path, *jobs: tuple[str, str]) -> Path:
    """A jobs file with one [[job]] per (input, output), all with the photo src.jpg."""
    tables = [f'[[job]]\ninput = "{i}"\noutput = "{o}"\n' for i, o in jobs]
    path = folder / "jobs.toml"
    path.write_text('[defaults]\nsource = "src.jpg"\n\n' + "\n".join(tables))
    return path


@pytest.mark.parametrize(
    "second_output",
    ["renders/x.mp4", "renders/./sub/../x.mp4", "alias/x.mp4"],  # alias: a symlinked folder
)
def test_two_jobs_writing_one_output_is_one_line(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], second_output: str
) -> None:
    _files(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "renders").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "renders")
    jobs = _jobs_file(tmp_path, ("a.mp4", "renders/x.mp4"), ("b.mp4", second_output))
    with pytest.raises(ClipswapError) as raised:
        plan_jobs_file(jobs)
    assert raised.value.exit_code == ExitCode.BAD_CONFIG_VALUE
    code, out, err = _batch(capsys, jobs)
    assert code == ExitCode.BAD_CONFIG_VALUE and out == ""
    second = tmp_path / second_output.replace("./sub/../", "")
    assert _one_error_line(err) == (
        f"{jobs}: job 2: {tmp_path / 'b.mp4'} and {tmp_path / 'a.mp4'} both write {second}"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "a.mp4",
        "alias",
        "b.mp4",
        "jobs.toml",
        "renders",
        "src.jpg",
    ]
    assert not any((tmp_path / "renders").iterdir())


@pytest.mark.parametrize("output", ["a.mp4", "./sub/../a.mp4", "alias.mp4"])
def test_a_job_writing_its_input_is_one_line(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    _files(tmp_path, "a.mp4")
    (tmp_path / "alias.mp4").symlink_to(tmp_path / "a.mp4")
    jobs = _jobs_file(tmp_path, ("a.mp4", output))
    code, out, err = _batch(capsys, jobs)
    assert code == ExitCode.BAD_OUTPUT_PATH and out == ""
    target = tmp_path / output.replace("./sub/../", "")
    assert _one_error_line(err) == f"{jobs}: job 1: output {target} is the input"
    assert (tmp_path / "a.mp4").read_bytes() == b"a.mp4"
    assert not (tmp_path / "jobs.batch.sqlite").exists()


@pytest.mark.parametrize("out_dir", ["in", "in/sub/..", "alias"])  # alias: a symlink to in
def test_out_dir_that_is_in_dir_is_one_line(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], out_dir: str
) -> None:
    inputs = _files(tmp_path / "in", "a.mp4", "sub/b.mp4")
    (tmp_path / "alias").symlink_to(inputs)
    code, out, err = _batch(capsys, source, inputs, tmp_path / out_dir)
    assert code == ExitCode.BAD_OUTPUT_PATH and out == ""
    assert _one_error_line(err) == (
        f"output {tmp_path / 'alias' / 'a.mp4'} is the input"
        if out_dir == "alias"
        else f"OUT_DIR {inputs} is IN_DIR; outputs never overwrite inputs"
    )
    assert sorted(path.name for path in inputs.rglob("*")) == ["a.mp4", "b.mp4", "sub"]
