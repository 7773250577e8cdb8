"""The documentation says what the code does, and every link in it leads somewhere."""

import re
from pathlib import Path

from gateway.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def test_the_settings_table_lists_every_gateway_setting_as_the_code_defines_it():
    page = (ROOT / "docs" / "gateway.md").read_text()
    start = page.index("<!-- settings-table -->") + len("<!-- settings-table -->")
    end = page.index("<!-- /settings-table -->")
    assert page[start:end].strip() == settings_table()


def test_every_relative_link_of_the_readme_and_docs_names_a_file_that_exists():
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert broken == []


def test_the_curl_example_file_exists():
    assert (ROOT / "examples/digit.json").exists()
