"""A config's `curation:` and `stages:` sections are typed (issue 25): a bad section fails `load_config`,
`savi doctor` and `savi build` with one line naming it, while a good one keeps the hash and the build.json
record it had as a plain mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from videosavi.builders.generate.stages import check_stage_sections, stage_params
from videosavi.cli import app
from videosavi.config import load_config
from videosavi.curation import CurationConfig, load_curation_config
from videosavi.errors import ConfigError
from videosavi.workflows.doctor import DoctorOptions, run_doctor


def _config(tmp_path: Path, **sections: object) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"extends": "demo", **sections}), encoding="utf-8")
    return path


@pytest.mark.parametrize(("section", "where"), [
    ({"drop_refusal": False}, "curation.drop_refusal"),
    ({"balance": "sometimes"}, "curation.balance"),
    ({"length_ratio_min": 3, "length_ratio_max": 2}, "curation: length_ratio_min (3.0) must be below"),
])
def test_a_bad_curation_section_fails_load_config_and_doctor_in_one_line(tmp_path: Path, section: dict,
                                                                         where: str) -> None:
    path = _config(tmp_path, curation=section)
    with pytest.raises(ConfigError, match="not a valid videosavi config") as err:
        load_config(path)
    assert where in str(err.value) and "\n" not in str(err.value)
    [config_row, *_] = run_doctor(DoctorOptions(config=path))
    assert config_row.name == "config" and config_row.failed and where in config_row.detail
    res = CliRunner().invoke(app, ["build", "--config", str(path), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and where in res.output and not (tmp_path / "run").exists()


def test_the_curation_section_is_typed_and_recorded_as_written() -> None:
    cfg = load_config("videosavi")
    assert isinstance(cfg.curation, CurationConfig) and cfg.curation.profile == "paper"
    assert not cfg.curation.drop_refusals  # the profile applied
    assert cfg.model_dump(mode="json")["curation"] == {"profile": "paper"}  # build.json: as written
    assert load_curation_config(cfg.model_dump(mode="json")["curation"]) == cfg.curation
    assert load_curation_config(cfg.curation) is cfg.curation
    assert load_config("demo").model_copy(update={"curation": cfg.curation}).data_hash() != \
        load_config("demo").data_hash()


def test_an_unknown_stage_section_is_refused_by_name(tmp_path: Path) -> None:
    path = _config(tmp_path, stages={"qestion": {"temperature": 0.5}})
    cfg = load_config(path)  # the config layer cannot know the stages: the stage registry checks the names
    with pytest.raises(ConfigError, match=r"stages.qestion: no such stage \(the stages: describe, question"):
        check_stage_sections(cfg)
    [config_row, *_] = run_doctor(DoctorOptions(config=path))
    assert config_row.failed and "stages.qestion: no such stage" in config_row.detail
    res = CliRunner().invoke(app, ["build", "--config", str(path), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "stages.qestion: no such stage" in res.output
    with pytest.raises(ConfigError, match=r"stages\.describe\.model"):  # only the critique takes another model
        load_config(_config(tmp_path, stages={"describe": {"model": {"backend": "tiny"}}}))


def test_a_stage_section_sets_its_sampling_else_the_stage_module_does() -> None:
    plain = load_config("demo")
    assert stage_params(plain, "describe").max_new_tokens == 512  # describe.py's defaults
    tuned = load_config("demo", {"stages": {"describe": {"max_new_tokens": 64}}})
    assert stage_params(tuned, "describe").max_new_tokens == 64 and stage_params(tuned, "question") == \
        plain.stages.question
    assert tuned.data_hash() != plain.data_hash()  # a section given changes the data; its absence does not
    assert load_config("demo", {"stages": {"describe": None}}).data_hash() == plain.data_hash()
