"""A build shows conduit's lines only: BentoML's warnings about its own choices (a GPU bentofile
"fallback to bento v1") stay out of apply's output; its errors do not."""
from __future__ import annotations

import logging

import pytest

from conduit.build import BENTOML_LOGGERS, bentoml_warnings_hidden, build
from serving.trained import iris_folder


def test_a_gpu_build_prints_no_bentoml_fallback_notice(tmp_path, monkeypatch, capfd):
    pytest.importorskip("bentoml")
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    manifest = iris_folder(tmp_path / "src", name="quiet-gpu", hardware="H100")  # docker.cuda_version in the bentofile
    lines: list[str] = []
    result = build(manifest, progress=lines.append)
    out, err = capfd.readouterr()
    assert not result.reused and any(line.startswith("✅ Built Bento") for line in lines)
    assert "bento v1" not in out + err and "bento v2" not in out + err


def test_only_bentoml_errors_pass_while_it_builds(caplog):
    caplog.set_level(logging.DEBUG)
    inner = logging.getLogger("_bentoml_sdk.images")  # where the fallback notice is logged
    with bentoml_warnings_hidden():
        inner.warning("docker.cuda_version is not supported by bento v2, fallback to bento v1")
        inner.error("a real BentoML error")
    assert [record.getMessage() for record in caplog.records] == ["a real BentoML error"]
    assert [logging.getLogger(name).level for name in BENTOML_LOGGERS] == [logging.NOTSET] * len(BENTOML_LOGGERS)
