from dataclasses import dataclass
from pathlib import Path

import pytest

from clipswap_video._resources import configs_dir
from clipswap_video.config import Settings, load_settings, to_toml
from clipswap_video.config_reference import (
    REGENERATE,
    field_docstrings,
    section_reference,
    settings_reference,
)
from clipswap_video.errors import ConfigValueError, InputNotFoundError, UnknownConfigKeyError


def test_default_toml_equals_builtin_defaults() -> None:
    assert load_settings(configs_dir() / "default.toml") == Settings()


def test_configuration_page_is_generated_from_settings() -> None:
    """docs/configuration.md is settings_reference(): a new or changed setting, or
    field docstring, fails here until the page is regenerated."""
    page = Path(__file__).parents[1] / "docs" / "configuration.md"
    assert page.read_text(encoding="utf-8") == settings_reference(), (
        f"docs/configuration.md is out of date; regenerate it: {REGENERATE}"
    )


def test_every_setting_needs_a_docstring() -> None:
    @dataclass(frozen=True)
    class Undocumented:
        """[demo]: a section."""

        documented: int = 1
        """Has one."""
        bare: int = 2

    assert field_docstrings(Undocumented) == {"documented": "Has one."}
    with pytest.raises(ValueError, match="bare has no docstring"):
        section_reference("demo", Undocumented)


def test_to_toml_round_trips(tmp_path: Path) -> None:
    settings = load_settings(overrides=["video.crf=23", 'video.options={tune="film"}'])
    (tmp_path / "c.toml").write_text(to_toml(settings))
    assert load_settings(tmp_path / "c.toml") == settings


def test_overrides_win_over_file(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[video]\ncrf = 30\ncodec = "libx265"\n')
    settings = load_settings(tmp_path / "c.toml", ["video.crf=12", "video.preset=slow"])
    assert (settings.video.codec, settings.video.crf, settings.video.preset) == (
        "libx265",
        12,
        "slow",
    )


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("video.crff=1", "did you mean video.crf"),
        ("vidoe.crf=1", "vidoe.crf"),
        ("nokey=1", "nokey"),
    ],
)
def test_unknown_key_names_it(override: str, hint: str) -> None:
    with pytest.raises(UnknownConfigKeyError, match=hint):
        load_settings(overrides=[override])


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("video.crf=abc", "not a valid int"),
        ("video.crf=99", "out of range"),
        ("video.crf=true", "not a valid int"),
        ("swap.swapper=magic", "not one of"),
        ("input.tolerate_errors=1", "not a valid bool"),
        ("video.options=3", "must be a table"),
        ("just-a-word", "section.key=value"),
        ("faces.detect_size=papers", "is not integer from 0 to 16384 or one of `paper`"),
        ("faces.detect_size=-5", "out of range"),
    ],
)
def test_bad_values_are_refused(override: str, hint: str) -> None:
    with pytest.raises(ConfigValueError, match=hint):
        load_settings(overrides=[override])


def test_a_setting_of_two_kinds_takes_either() -> None:
    assert load_settings(overrides=["faces.detect_size=paper"]).faces.detect_size == "paper"
    assert load_settings(overrides=["faces.detect_size=1280"]).faces.detect_size == 1280


def test_bad_config_files(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[video\ncrf = 1")
    with pytest.raises(ConfigValueError, match=r"broken.toml is not valid TOML: .*at line 1"):
        load_settings(tmp_path / "broken.toml")
    with pytest.raises(InputNotFoundError, match="config file .*missing.toml does not exist"):
        load_settings(tmp_path / "missing.toml")
    (tmp_path / "flat.toml").write_text("video = 3\n")
    with pytest.raises(ConfigValueError, match="must be a table"):
        load_settings(tmp_path / "flat.toml")


def test_the_paper_mode_is_a_settings_file_under_config_and_set(tmp_path: Path) -> None:
    paper = load_settings(mode="paper")
    assert (paper.faces.detector, paper.faces.detect_size, paper.faces.detect_every) == (
        "retinaface",
        "paper",
        1,
    )
    assert (paper.faces.min_score, paper.faces.min_size, paper.faces.refine) == ("file", 0, False)
    assert (paper.composite.masks, paper.composite.blend) == (("paper",), "alpha")
    assert not paper.composite.colour_transfer and not paper.track.smooth
    assert paper.swap.swapper == "clipswap" and paper.faces.source_face == "score"
    (tmp_path / "mine.toml").write_text('[composite]\nblend = "multiband"\n')
    mine = load_settings(tmp_path / "mine.toml", ["faces.detect_every=2"], mode="paper")
    assert (mine.composite.blend, mine.faces.detect_every, mine.composite.masks) == (
        "multiband",
        2,
        ("paper",),
    )  # --config and --set win over the mode
    assert load_settings(mode="video") == load_settings()
