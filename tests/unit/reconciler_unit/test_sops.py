"""SOPS secrets in a desired state, without sops: which files are encrypted, the names their values
get, the entry a secret takes, the check ``validate`` does without a key, sops's refusals told
without anything secret, and the render (with a decryptor that stands in for sops; the real one
is tested against real sops and age in tests/integration/reconciler_integration/test_sops.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from reconciler_support.fakes import FakeDecryptor

from reconciler.cli import EXIT_OK, EXIT_REFUSED, main
from reconciler.desired import RenderOptions, render
from reconciler.errors import ValidationError
from reconciler.masking import Masker
from reconciler.serialize import to_jsonable
from reconciler.sopsfiles import (
    Format,
    SealedSecret,
    check_encrypted,
    file_format,
    is_sops_file,
    mask_candidates,
    secret_name,
    select,
    sops_reason,
)

KEY = hashlib.sha256(b"AGE-SECRET-KEY-1FAKE").digest()
META = {"age": [{"recipient": "age1abc", "enc": "..."}], "mac": "ENC[...]", "version": "3.11.0"}
PASSWORD = "correct-horse-battery"

STACK = """version: "3.8"
services:
  web:
    image: reg.test/web:1
    secrets: [db_password, api_token]
secrets:
  db_password:
    file: ./secrets.sops.yaml
  api_token:
    file: ./secrets.sops.yaml
    x-sops-key: token
"""

# MAC mismatch as sops 3.11 prints it: the second digest is of the plaintext
MAC_MISMATCH = (
    "Error decrypting tree: Error walking tree: Could not decrypt value\n"
    "MAC mismatch. File has 31832AE6248D1AE25F72BB13A5261BA3B85189CDC08608D605CCBC0043DB7CAC0BB10"
    "80E586DC0D47FD0C9609F4450B0E3CB6725AE7E358D3E2D22EBABAFB8BC, computed 797F84876605369DB7DF3A"
    "09A6169D951DDC30116CB0AFD0AF825111B110D4DDCDB21AB7B3297A21AC4FFAD7EC24D0577A8D8F9BA67FA9C6C0"
    "3C9742795D0526\n"
)
NO_MATCH = """Failed to get the data key required to decrypt the SOPS file.

Group 0: FAILED
  age1yu8d0snm6tr5m9mafkv3k4y0dr63hmwdlg7486un7ums520wmerq8vfmeq: FAILED
    - | failed to create reader for decrypting sops data key with
      | age: identity did not match any of the recipients: incorrect
      | identity for recipient block.

Recovery failed because no master key was able to decrypt the file.
"""


def _sealed(values: dict[str, object]) -> str:
    """A mapping as sops leaves it (values shown as they are: the fake decryptor's input)."""
    return yaml.safe_dump({**values, "sops": META})


def _folder(tmp_path: Path, values: dict[str, object] | None = None, stack: str = STACK) -> Path:
    folder = tmp_path / "desired-state" / "test"
    folder.mkdir(parents=True)
    (folder / "stack.yml").write_text(stack)
    (folder / "images.yaml").write_text("web: reg.test/web:1\n")
    secrets = values if values is not None else {"db_password": PASSWORD, "token": "tok-12345"}
    (folder / "secrets.sops.yaml").write_text(_sealed(secrets))
    return folder


def _options(tmp_path: Path, decryptor: FakeDecryptor | None, **kw: bool) -> RenderOptions:
    return RenderOptions(
        stack="shop", environment="test", repo_root=tmp_path, decryptor=decryptor, **kw
    )


# ------------------------------------------------------------------ files and formats


@pytest.mark.parametrize(
    ("name", "sealed", "fmt"),
    [
        ("secrets.sops.yaml", True, Format.YAML),
        ("db.sops.yml", True, Format.YAML),
        ("app.enc.env", True, Format.DOTENV),
        ("tls.enc.pem", True, Format.BINARY),
        ("keys.sops.json", True, Format.JSON),
        ("legacy.enc.ini", True, Format.INI),
        ("password.txt", False, Format.BINARY),
        ("sops.yaml", False, Format.YAML),  # only a middle part marks it
        (".sops.yaml", False, Format.YAML),  # sops's own configuration file
    ],
)
def test_which_files_are_encrypted_and_their_format(name: str, sealed: bool, fmt: Format) -> None:
    assert is_sops_file(name) is sealed
    assert file_format(name) is fmt


# ------------------------------------------------------------------ names


def test_a_name_is_stable_and_changes_with_the_value_and_the_key() -> None:
    name = secret_name("shop", "db_password", KEY, PASSWORD.encode())
    assert name == secret_name("shop", "db_password", KEY, PASSWORD.encode())
    assert name.startswith("shop_db_password_")
    assert len(name.rsplit("_", 1)[1]) == 12
    assert name != secret_name("shop", "db_password", KEY, b"another password")
    assert name != secret_name("shop", "db_password", b"another key", PASSWORD.encode())


def test_a_name_is_not_a_plain_hash_of_the_value() -> None:
    """A short password's plain SHA-256 in a public name could be guessed back."""
    suffix = secret_name("shop", "pw", KEY, b"1234").rsplit("_", 1)[1]
    for digest in (hashlib.sha256(b"1234"), hashlib.sha1(b"1234"), hashlib.md5(b"1234")):  # noqa: S324
        assert suffix not in digest.hexdigest()


# ------------------------------------------------------------------ the entry a secret takes


def test_a_mapping_gives_the_named_entry_as_written() -> None:
    decrypted = json.dumps({"db_password": PASSWORD, "port": 5432, "on": True}).encode()
    assert select(decrypted, Format.YAML, "db_password") == PASSWORD.encode()
    assert select(decrypted, Format.DOTENV, "port") == b"5432"
    assert select(decrypted, Format.JSON, "on") == b"true"


def test_a_missing_or_nested_entry_is_named_without_any_value() -> None:
    decrypted = json.dumps({"db_password": PASSWORD, "nested": {"a": PASSWORD}}).encode()
    with pytest.raises(ValueError, match="no entry 'token'") as missing:
        select(decrypted, Format.YAML, "token")
    assert "db_password, nested" in str(missing.value)
    with pytest.raises(ValueError, match="'nested' is a dict, not a single value") as nested:
        select(decrypted, Format.YAML, "nested")
    for error in (missing, nested):
        assert PASSWORD not in str(error.value)


def test_a_file_that_is_no_mapping_gives_its_whole_content() -> None:
    pem = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    assert select(pem, Format.BINARY, "tls_key") == pem


# ------------------------------------------------------------------ the check without a key


def test_a_well_formed_sops_file_passes_the_check() -> None:
    assert check_encrypted(_sealed({"db_password": "ENC[...]"}), Format.YAML, "db_password") is None
    binary = json.dumps({"data": "ENC[...]", "sops": META})
    assert check_encrypted(binary, Format.BINARY, None) is None
    dotenv = "DB=ENC[...]\nsops_mac=ENC[...]\nsops_version=3.11.0\n"
    assert check_encrypted(dotenv, Format.DOTENV, "DB") is None


@pytest.mark.parametrize(
    ("text", "fmt", "why"),
    [
        ("db_password: hunter22\n", Format.YAML, "no sops metadata with a MAC"),
        ("db_password: [\n", Format.YAML, "does not parse as yaml"),
        ("-----BEGIN CERTIFICATE-----\n", Format.BINARY, "does not parse as binary"),
        ("DB=plain\n", Format.DOTENV, "no sops metadata"),
        (_sealed({"other": "ENC[...]"}), Format.YAML, "no entry 'db_password' in it"),
    ],
)
def test_what_is_not_well_formed_sops_is_named(text: str, fmt: Format, why: str) -> None:
    found = check_encrypted(text, fmt, "db_password")
    assert found is not None
    assert why in found
    assert "hunter22" not in found


# ------------------------------------------------------------------ sops's refusals


def test_a_mac_mismatch_is_told_without_the_digests() -> None:
    reason = sops_reason(MAC_MISMATCH)
    assert reason.startswith("MAC mismatch: the file was changed after it was encrypted")
    assert "797F8487" not in reason
    assert "31832AE6" not in reason


def test_a_key_that_is_not_a_recipient_is_told_with_the_recipients() -> None:
    reason = sops_reason(NO_MATCH)
    assert reason == (
        "the agent's age key is not one of the file's recipients (encrypted for "
        "age1yu8d0snm6tr5m9mafkv3k4y0dr63hmwdlg7486un7ums520wmerq8vfmeq)"
    )


def test_any_other_refusal_is_its_error_line_without_long_digests() -> None:
    reason = sops_reason(
        "Error unmarshalling input yaml: yaml: line 1: did not find expected ','\n"
    )
    assert reason == "Error unmarshalling input yaml: yaml: line 1: did not find expected ','"
    assert "…" in sops_reason("Error: digest " + "ab" * 32)


# ------------------------------------------------------------------ values kept to memory


def test_a_value_is_in_no_repr_and_no_serialized_form() -> None:
    secret = SealedSecret("db_password", "shop_db_password_abc", "secrets.sops.yaml", b"hunter22")
    assert "hunter22" not in repr(secret)
    assert to_jsonable(secret) == {
        "key": "db_password",
        "name": "shop_db_password_abc",
        "file": "secrets.sops.yaml",
    }


def test_what_the_masker_hides_includes_each_line_of_a_multi_line_value() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----\n"
    hidden = mask_candidates([SealedSecret("k", "n", "f", pem.encode())])
    assert pem in hidden
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEF" in hidden
    assert "-----END PRIVATE KEY-----" not in hidden
    masker = Masker(hidden)
    assert "MIIEvQ" not in masker.mask("bad key line: MIIEvQIBADANBgkqhkiG9w0BAQEF")


# ------------------------------------------------------------------ the render


def test_the_rendered_document_names_the_values_and_holds_none(tmp_path: Path) -> None:
    decryptor = FakeDecryptor()
    desired = render(_folder(tmp_path), _options(tmp_path, decryptor))
    db = secret_name("shop", "db_password", decryptor.name_key(), PASSWORD.encode())
    token = secret_name("shop", "api_token", decryptor.name_key(), b"tok-12345")
    assert desired.document["secrets"] == {
        "db_password": {"external": True, "name": db},
        "api_token": {"external": True, "name": token},
    }
    assert {(s.key, s.name, s.value) for s in desired.sealed_secrets} == {
        ("db_password", db, PASSWORD.encode()),
        ("api_token", token, b"tok-12345"),
    }
    assert desired.external_secrets == ()  # the agent creates them: pre-flight does not look
    assert decryptor.decrypted == ["secrets.sops.yaml"]  # one file, decrypted once
    for shown in (
        repr(desired),
        json.dumps(to_jsonable(desired)),
        yaml.safe_dump(desired.document),
    ):
        assert PASSWORD not in shown
        assert "tok-12345" not in shown
    web = desired.service("web")
    assert web is not None
    assert web.fields.secrets == tuple(sorted((db, token)))


def test_a_new_value_is_a_new_name_and_a_new_spec(tmp_path: Path) -> None:
    before = render(_folder(tmp_path / "a"), _options(tmp_path / "a", FakeDecryptor()))
    rotated = {"db_password": "a new password", "token": "tok-12345"}
    after = render(_folder(tmp_path / "b", rotated), _options(tmp_path / "b", FakeDecryptor()))
    names = [{s.key: s.name for s in d.sealed_secrets} for d in (before, after)]
    assert names[0]["db_password"] != names[1]["db_password"]
    assert names[0]["api_token"] == names[1]["api_token"]
    spec = [d.service("web") for d in (before, after)]
    assert spec[0] is not None
    assert spec[1] is not None
    assert spec[0].spec_hash != spec[1].spec_hash
    assert before.desired_hash != after.desired_hash


def test_a_file_sops_refuses_is_named_with_its_reason(tmp_path: Path) -> None:
    decryptor = FakeDecryptor()
    decryptor.refused["secrets.sops.yaml"] = sops_reason(MAC_MISMATCH)
    with pytest.raises(ValidationError) as refused:
        render(_folder(tmp_path), _options(tmp_path, decryptor))
    assert refused.value.problems == (
        "secrets.db_password: cannot decrypt secrets.sops.yaml: MAC mismatch: the file was "
        "changed after it was encrypted (edit it with sops)",
    )  # once, though two secrets read it


def test_a_missing_entry_refuses_the_revision(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        render(_folder(tmp_path, {"db_password": PASSWORD}), _options(tmp_path, FakeDecryptor()))
    assert refused.value.problems == (
        "secrets.api_token: secrets.sops.yaml: no entry 'token' in it (entries: db_password); "
        "set x-sops-key",
    )
    assert PASSWORD not in str(refused.value.problems)


def test_an_agent_without_a_key_refuses_sops_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"set render\.sops_age_key_file"):
        render(_folder(tmp_path), _options(tmp_path, None))


def test_a_name_of_its_own_is_refused(tmp_path: Path) -> None:
    stack = STACK.replace("x-sops-key: token", "x-sops-key: token\n    name: fixed")
    with pytest.raises(ValidationError, match="named by its value: no name:"):
        render(_folder(tmp_path, stack=stack), _options(tmp_path, FakeDecryptor()))


def test_validate_checks_the_files_without_decrypting_them(tmp_path: Path) -> None:
    decryptor = FakeDecryptor()
    desired = render(_folder(tmp_path), _options(tmp_path, decryptor, decrypt=False))
    assert decryptor.decrypted == []
    assert {s.value for s in desired.sealed_secrets} == {b""}  # named, no value
    assert desired.document["secrets"]["db_password"] == {
        "external": True,
        "name": "shop_db_password_000000000000",
    }
    plain = tmp_path / "plain"
    folder = _folder(plain)
    (folder / "secrets.sops.yaml").write_text("db_password: hunter22\ntoken: x\n")
    with pytest.raises(ValidationError) as refused:
        render(folder, _options(plain, None, decrypt=False))
    assert "secrets.sops.yaml: not a SOPS file" in refused.value.problems[0]
    assert "hunter22" not in str(refused.value.problems)


def test_a_whole_file_secret_and_a_plain_file_secret_side_by_side(tmp_path: Path) -> None:
    stack = """version: "3.8"
services:
  web:
    image: reg.test/web:1
    secrets: [tls_key, motd]
secrets:
  tls_key:
    file: ./tls.enc.pem
  motd:
    file: ./motd.txt
"""
    folder = _folder(tmp_path, stack=stack)
    pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    (folder / "tls.enc.pem").write_text(json.dumps({"data": pem, "sops": META}))
    (folder / "motd.txt").write_text("hello\n")
    desired = render(folder, _options(tmp_path, FakeDecryptor()))
    assert [(s.key, s.value) for s in desired.sealed_secrets] == [("tls_key", pem.encode())]
    motd = desired.document["secrets"]["motd"]
    assert motd["name"].startswith("shop_motd_")
    assert motd["file"].endswith("motd.txt")


def test_reconciler_validate_says_it_did_not_decrypt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    assert main(["validate", "--no-docker", "--stack", "shop", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "2 secret(s) from SOPS files (secrets.sops.yaml): checked as well-formed SOPS" in out
    assert "not decrypted (validate uses no key" in out
    (folder / "secrets.sops.yaml").write_text(f"db_password: {PASSWORD}\ntoken: x\n")
    assert main(["validate", "--no-docker", str(folder)]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "secrets.sops.yaml: not a SOPS file: no sops metadata with a MAC" in err
    assert PASSWORD not in err
