"""Rendering and validating a desired-state folder: what gets deployed, and what gets refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.desired import RenderOptions, render
from reconciler.documents import stamped_document
from reconciler.errors import ValidationError
from reconciler.models import PortSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "desired-state" / "example"
OPTS = RenderOptions(stack="demo", environment="test")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "repo" / "desired-state" / "test"
    shutil.copytree(EXAMPLE, dest)
    return dest


def _opts(folder: Path) -> RenderOptions:
    return RenderOptions(stack="demo", environment="test", repo_root=folder.parent.parent)


def _refused(folder: Path) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        render(folder, _opts(folder))
    return info.value


def test_example_renders_with_images_variables_and_checks(folder: Path) -> None:
    d = render(folder, _opts(folder))
    web, worker = d.services
    assert (web.name, web.image) == ("web", "127.0.0.1:5000/example/web:1.4.2")
    assert worker.image == "127.0.0.1:5000/example/worker:3"
    assert web.fields.env == {"GREETING": "hello example", "LOG_LEVEL": "info", "WEB_WORKERS": "2"}
    assert web.fields.replicas == 2
    assert web.fields.ports == (PortSpec(8080, 18080, "tcp", "host"),)
    assert web.fields.resources == {"limits.cpus": 250_000_000, "limits.memory": 64 * 1024**2}
    assert web.fields.update_config["delay"] == "1s"
    assert worker.fields.command == ("python3", "-m", "worker", "--queue", "${QUEUE}")
    assert web.health is not None
    assert web.health.expect_version == "1.4.2"  # {tag} of the image in images.yaml
    assert web.health.timeout == 20.0
    assert web.health.network is None
    assert worker.health is not None
    assert worker.health.network == "demo_front"
    assert worker.health.expect_status == tuple(range(200, 300))
    assert worker.health.soak == 5.0
    conf = d.document["configs"]["web_conf"]
    assert conf["name"].startswith("demo_web_conf_")
    assert Path(conf["file"]).is_absolute()
    assert "env_file" not in d.document["services"]["web"]


def test_hashes_change_with_content_only(folder: Path) -> None:
    a = render(folder, _opts(folder))
    b = render(folder, _opts(folder))
    assert a.desired_hash == b.desired_hash
    assert [s.spec_hash for s in a.services] == [s.spec_hash for s in b.services]
    (folder / "images.yaml").write_text("web: 127.0.0.1:5000/example/web:1.4.3\n")
    c = render(folder, _opts(folder))
    assert c.desired_hash != a.desired_hash
    assert c.services[0].spec_hash != a.services[0].spec_hash
    assert c.services[1].spec_hash == a.services[1].spec_hash
    (folder / "config" / "web.conf").write_text("listen 9090\n")
    d = render(folder, _opts(folder))
    assert d.services[0].spec_hash != c.services[0].spec_hash  # new config name → web changes
    assert d.services[1].spec_hash == c.services[1].spec_hash


def test_invalid_yaml_is_refused_with_its_location(folder: Path) -> None:
    (folder / "stack.yml").write_text("services:\n  web: [unclosed\n")
    err = _refused(folder)
    assert "stack.yml: invalid YAML" in err.message
    assert "line" in err.detail


def test_unknown_service_in_images_and_service_without_image(folder: Path) -> None:
    (folder / "images.yaml").write_text("wbe: 127.0.0.1:5000/example/web:2\n")
    err = _refused(folder)
    assert "images.yaml: 'wbe' is not a service of stack.yml" in err.problems
    assert any("services.web: no image" in p for p in err.problems)


def test_malformed_health_labels_are_refused(folder: Path) -> None:
    text = (folder / "stack.yml").read_text()
    text = text.replace('driftless.health.timeout: "20s"', 'driftless.health.timeout: "soon"')
    text = text.replace('driftless.health.status: "2xx"', 'driftless.health.statsu: "2xx"')
    text = text.replace("driftless.health.network: front", "driftless.health.network: nowhere")
    (folder / "stack.yml").write_text(text)
    problems = "\n".join(_refused(folder).problems)
    assert "driftless.health.timeout: not a duration: 'soon'" in problems
    assert "unknown label driftless.health.statsu" in problems
    assert "'nowhere' is not a network of this stack" in problems


def test_more_refusals(folder: Path) -> None:
    (folder / "images.yaml").write_text("web: Not/An:Image:ref\n")
    text = (folder / "stack.yml").read_text()
    text = text.replace("./config/web.conf", "../../../outside.conf")
    text = text.replace("${GREETING_NAME:-world}", "${UNSET_VAR}")
    (folder / "stack.yml").write_text(text)
    problems = "\n".join(_refused(folder).problems)
    assert "UNSET_VAR is not set" in problems
    (folder / "stack.yml").write_text(text.replace("${UNSET_VAR}", "x"))
    problems = "\n".join(_refused(folder).problems)
    assert "not a valid image reference: 'Not/An:Image:ref'" in problems
    assert "points outside the repository" in problems


def test_reconciler_labels_cannot_be_set_by_hand(folder: Path) -> None:
    text = (
        (folder / "stack.yml")
        .read_text()
        .replace('driftless.health.timeout: "20s"', 'driftless.revision: "x"')
    )
    (folder / "stack.yml").write_text(text)
    assert "driftless.revision is set by the reconciler" in _refused(folder).message


def test_missing_folder_and_stack_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"no stack\.yml"):
        render(tmp_path, OPTS)
    with pytest.raises(ValidationError, match="not a directory"):
        render(tmp_path / "nope", OPTS)


def test_config_variables_override_env_file(folder: Path) -> None:
    opts = RenderOptions(
        stack="demo", environment="t", variables={"GREETING_NAME": "cfg"}, repo_root=folder
    )
    assert render(folder, opts).services[0].fields.env["GREETING"] == "hello cfg"


def test_stamping_keeps_the_revision_of_unchanged_services(folder: Path) -> None:
    d = render(folder, _opts(folder))
    doc = stamped_document(d, "new-rev", keep_revision={"worker": "old-rev"})
    web = doc["services"]["web"]["deploy"]["labels"]
    worker = doc["services"]["worker"]["deploy"]["labels"]
    assert web["driftless.revision"] == "new-rev"
    assert web["driftless.spec-hash"] == d.services[0].spec_hash
    assert worker["driftless.revision"] == "old-rev"
    assert "driftless.revision" not in d.document["services"]["web"]["deploy"]["labels"]
