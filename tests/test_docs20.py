"""The README and its reference pages in docs/ as one manual: every relative link reaches a file that exists and,
where it names one, a heading of that file (as GitHub makes its anchors), and every page is reachable from the
README."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a `# comment` in a block is no heading, a `[x](y)` there no link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but `-` and `_` dropped, spaces made `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in the file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(path.read_text()), flags=re.M):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file whose file or heading anchor does not exist."""
    broken = []
    for target in LINK.findall(_prose(path.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not this repository's
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists():
            broken.append(f"{target} (no file {linked})")
        elif anchor and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


def test_the_manual_has_its_reference_pages():
    assert len(PAGES) >= 5, "docs/*.md: the README's reference pages"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: path.name)
def test_every_relative_link_reaches_a_file_and_a_heading(path):
    assert broken_links(path) == []


def test_every_reference_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve()
              for target in LINK.findall(_prose(README.read_text()))}
    assert [page.name for page in PAGES if page.resolve() not in linked] == []


@pytest.mark.parametrize("heading, anchor", [
    ("Codecs: `--codec`", "codecs---codec"),
    ("Exact far blur: `render.exact_far`", "exact-far-blur-renderexact_far"),
    ("When something goes wrong", "when-something-goes-wrong"),
    ("Non-square pixels, mirrors", "non-square-pixels-mirrors"),
])
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert github_anchor(heading) == anchor


def test_a_broken_link_is_found(tmp_path):
    """The check itself can fail: a missing file, a missing heading, and a heading only in a code block."""
    (tmp_path / "other.md").write_text("# Title\n\n## Same\n\n## Same\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("[a](other.md#title) [b](other.md#same-1) [c](missing.md) [d](other.md#nowhere) "
                    "[e](other.md#not-a-heading) [f](#here) [g](https://example.com/x.md)\n\n## Here\n")
    assert broken_links(page) == [f"missing.md (no file {tmp_path / 'missing.md'})",
                                  "other.md#nowhere (no heading #nowhere in other.md)",
                                  "other.md#not-a-heading (no heading #not-a-heading in other.md)"]
