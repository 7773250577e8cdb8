"""The README documents what the code does."""

from pathlib import Path

from gateway.settings import settings_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_settings_table_lists_every_gateway_setting_as_the_code_defines_it():
    start = README.index("<!-- settings-table -->") + len("<!-- settings-table -->")
    end = README.index("<!-- /settings-table -->")
    assert README[start:end].strip() == settings_table()


def test_the_curl_example_file_exists():
    assert (Path(__file__).resolve().parent.parent / "examples/digit.json").exists()
