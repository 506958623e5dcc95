"""The README stays a five-minute read, and every relative link of the README
and of the pages under docs/ leads to a file (and heading) that exists."""

import glob
import os
import re

import pytest

from helpers import ROOT

PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))),
         *sorted(glob.glob(os.path.join(ROOT, "weights", "**", "README.md"), recursive=True))]
README_MAX_LINES = 200


def anchors(path) -> set:
    """GitHub's anchors of a markdown file's headings."""
    with open(path, encoding="utf8") as f:
        heads = re.findall(r"^#+ (.*)$", f.read(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def broken_links(page) -> list:
    with open(page, encoding="utf8") as f:
        text = f.read()
    bad = []
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", link):  # http(s), mailto
            continue
        path, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(target):
            bad.append(f"{link} (no such file)")
        elif anchor and target.endswith(".md") and anchor not in anchors(target):
            bad.append(f"{link} (no such heading)")
    return bad


def too_long(text) -> str | None:
    """What is wrong with a README of this text, if it is too long."""
    n = len(text.splitlines())
    return f"{n} lines; move detail to a page under docs/" if n > README_MAX_LINES else None


def test_the_readme_is_at_most_200_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf8") as f:
        assert too_long(f.read()) is None
    assert too_long("line\n" * 200) is None
    assert too_long("line\n" * 201) == "201 lines; move detail to a page under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_the_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "a.md").write_text("# Top part\n\n## The cache\n")
    page = tmp_path / "p.md"
    page.write_text("[ok](a.md#the-cache) [top](a.md#top-part) [web](https://x.org/y) "
                    "[gone](b.md) [no heading](a.md#the-caches) ![img](a.md)\n")
    assert broken_links(str(page)) == ["b.md (no such file)", "a.md#the-caches (no such heading)"]
