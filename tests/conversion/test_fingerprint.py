"""A version's fingerprint is what `sha256sum` says, over every file its answers depend on."""

from __future__ import annotations

import subprocess

import pytest

from conversion.fingerprint import (
    FingerprintMismatch,
    file_digest,
    verify_fingerprint,
    version_files,
    version_fingerprint,
)


@pytest.fixture
def version(tmp_path):
    version = tmp_path / "1"
    (version / "vocab").mkdir(parents=True)
    (version / "model.py").write_text("print('model')\n")
    (version / "tokenizer.json").write_text("{}\n")
    (version / "vocab/words.txt").write_text("a\nb\n")
    (version / "__pycache__").mkdir()
    (version / "__pycache__/model.cpython-311.pyc").write_bytes(b"written by the server")
    return version


def shell(command: str, cwd) -> str:
    return subprocess.run(
        command, shell=True, cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def test_one_file_has_the_sha256_that_sha256sum_prints(version):
    printed = shell("sha256sum model.py", version).split()[0]
    assert (
        version_fingerprint(version, ["model.py"]) == printed == file_digest(version / "model.py")
    )


def test_a_python_model_covers_every_file_but_pycache_as_the_sha256_of_its_sha256sum_listing(
    version,
):
    assert version_files(version) == ["model.py", "tokenizer.json", "vocab/words.txt"]
    listing = shell("sha256sum model.py tokenizer.json vocab/words.txt | sha256sum", version)
    assert version_fingerprint(version) == listing.split()[0]


def test_any_changed_added_or_renamed_file_changes_it_and_pycache_does_not(version):
    seen = {version_fingerprint(version)}
    (version / "__pycache__/other.pyc").write_bytes(b"more")
    assert version_fingerprint(version) in seen
    for change in (
        lambda: (version / "tokenizer.json").write_text("{ }\n"),
        lambda: (version / "extra.bin").write_bytes(b"\0"),
        lambda: (version / "extra.bin").rename(version / "renamed.bin"),
    ):
        change()
        seen.add(version_fingerprint(version))
    assert len(seen) == 4


def test_a_mismatch_names_the_model_the_files_both_values_and_the_fix(version):
    actual = version_fingerprint(version, ["model.py"])
    with pytest.raises(FingerprintMismatch) as raised:
        verify_fingerprint("digits", version, "0" * 64, ["model.py"])
    message = str(raised.value)
    assert "model digits" in message and "(model.py)" in message
    assert actual in message and "0" * 64 in message
    assert "re-run the converter, or update the fingerprint" in message
    verify_fingerprint("digits", version, actual, ["model.py"])  # agrees: no error


def test_a_model_without_a_fingerprint_is_not_checked(version):
    verify_fingerprint("digits", version, "", ["missing.onnx"])


def test_a_missing_file_or_an_empty_version_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        version_fingerprint(tmp_path, ["model.onnx"])
    with pytest.raises(ValueError, match="holds no file"):
        version_fingerprint(tmp_path)
