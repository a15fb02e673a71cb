"""Every relative link in the Markdown files outside the docs site (README.md, bench/README.md)
resolves: the file exists and its ``#anchor`` names a heading there. ``make docs`` (mkdocs
--strict) checks the pages under docs/ itself; these files are outside it.

An anchor must hold under both slug rules, GitHub's (where the files are read) and MkDocs'
(Python-Markdown's toc, where the pages are served), so a link works in either place.
"""

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = (ROOT / "README.md", ROOT / "bench" / "README.md")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _heading_text(markdown):
    """A heading as rendered: link text kept, code and emphasis markers dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"[`*_]", "", text).strip()


def github_slug(text):
    slug = re.sub(r"[^\w\- ]", "", text.lower())
    return slug.replace(" ", "-")


def mkdocs_slug(text):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _numbered(slugs, separator):
    """Repeated slugs get a suffix, as each renderer numbers them."""
    seen, ids = {}, set()
    for slug in slugs:
        count = seen.get(slug, 0)
        ids.add(slug if count == 0 else f"{slug}{separator}{count}")
        seen[slug] = count + 1
    return ids


def anchors(path):
    """The heading ids of a Markdown file: (GitHub's, MkDocs')."""
    headings = [_heading_text(h) for h in HEADING.findall(FENCE.sub("", path.read_text()))]
    return (_numbered(map(github_slug, headings), "-"),
            _numbered(map(mkdocs_slug, headings), "_"))


def relative_links(path):
    text = INLINE_CODE.sub("", FENCE.sub("", path.read_text()))
    return [target for target in LINK.findall(text) if not SCHEME.match(target)]


def broken_links(path):
    """Each relative link of ``path`` that does not resolve, with why."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
        elif anchor and not all(anchor in ids for ids in anchors(destination)):
            broken.append(f"{target}: no heading with that id")
    return broken


def test_every_relative_link_outside_the_docs_site_resolves():
    for path in CHECKED:
        assert relative_links(path), f"{path.name} links nowhere: is the link pattern right?"
        assert broken_links(path) == [], path.relative_to(ROOT)


def test_the_readme_links_into_every_section_of_the_docs():
    targets = {target.partition("#")[0] for target in relative_links(ROOT / "README.md")}
    for section in ("api", "operators", "contributors"):
        assert any(t.startswith(f"docs/{section}/") for t in targets), section


def test_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "page.md").write_text(
        "# Title\n\n## Logs\n\n## Logs\n\n```\n# not a heading\n```\n")
    readme = tmp_path / "README.md"
    readme.write_text("[a](page.md#logs) [b](page.md#logs-1) [c](page.md#not-a-heading)\n"
                      "[d](gone.md) [e](page.md#title) [f](#here) `[g](in-code.md)`\n\n## Here\n")
    assert broken_links(readme) == [
        "page.md#logs-1: no heading with that id",  # GitHub's id; MkDocs' is logs_1
        "page.md#not-a-heading: no heading with that id",
        "gone.md: no such file",
    ]


def test_slugs_follow_github_and_mkdocs():
    heading = _heading_text("JSON:API 1.1 rules not supported, and why")
    assert github_slug(heading) == mkdocs_slug(heading) == "jsonapi-11-rules-not-supported-and-why"
    heading = _heading_text("Seed 002: `POST /api/v1/notifications/device-token` (Allmine)")
    assert github_slug(heading) == "seed-002-post-apiv1notificationsdevice-token-allmine"
    assert github_slug("A -- B") == "a----b" and mkdocs_slug("A -- B") == "a-b"
