"""Every citation of a vendor's API contract or of an emulator's fidelity notes resolves to a
heading of a file inside the repository.

The forms, several of which may share one bracket (separated by commas or semicolons):

- ``[API.md §1.4]``, ``[API.md §1.4, §1.6]``, ``[API.md §1.8-1.9]``: numbered sections of the
  nearest ``API.md`` above the citing file, i.e. its vendor folder's;
- ``[hubspot/API.md §1.5, salesforce/API.md §2.5]``: a vendor's, from anywhere in the repo;
- ``[API.md, Associations]``, ``[FIDELITY.md, Objects]``: a heading by its text. A bare
  ``FIDELITY.md`` cited from vendor code is ``<vendor>/emulator/FIDELITY.md``.

A section exists when a heading carries its number (``## 1.4 Search``); a whole chapter (``§3``)
exists when some heading's number starts with it. Section citations are checked wherever they
appear, in plain text too (``Sources: ../API.md §3``); heading citations only inside brackets
on one line. The project's retired notes may not be cited at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "connectors" / "crm_connectors"
#: This file names the retired notes to look for them, so it is left out of the scan.
SELF = Path(__file__).resolve()
#: The cross-vendor notes outside the repo and the emulators' old notes, both replaced by each
#: vendor folder's API.md and emulator/FIDELITY.md.
RETIRED = ("CRM-API.md", "BEHAVIOR.md")
#: Vendor spec files are third-party text: their "§" and brackets are not ours.
SKIPPED = ("tests/specs/",)

_NUM = r"\d+(?:\.\d+)*(?!\.?\w)"
_ITEM = rf"§{_NUM}(?:-{_NUM})?"
_DOC = r"(?<![\w.-])((?:[\w.-]+/)*(?:API|FIDELITY)\.md)"
SECTION_REF = re.compile(rf"{_DOC}[ \t]+({_ITEM}(?:,[ \t]*{_ITEM})*)")
ITEM = re.compile(rf"§({_NUM})(?:-({_NUM}))?")
BRACKET = re.compile(r"\[([^\[\]\n]*)\]")
HEADING_REF = re.compile(rf"(?:^|(?<=[\s;(])){_DOC},[ \t]+(?!§)([^;]+)")
HEADING = re.compile(r"#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$")
NUMBERED = re.compile(r"(\d+(?:\.\d+)*)\.?[ \t]+(.*)")


@dataclass(frozen=True)
class Citation:
    line: int
    doc: str  # as written: "API.md", "hubspot/API.md", "../API.md", "FIDELITY.md"
    section: str | None = None  # "1.4", or "3" for a whole chapter
    heading: str | None = None


def _norm(text: str) -> str:
    return " ".join(text.replace("`", "").split()).casefold()


def citations(text: str) -> Iterator[Citation]:
    """Every section and heading citation in ``text``, one per cited part."""
    for match in SECTION_REF.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        for item in ITEM.finditer(match.group(2)):
            for number in filter(None, item.groups()):
                yield Citation(line, match.group(1), section=number)
    for bracket in BRACKET.finditer(text):
        line = text.count("\n", 0, bracket.start()) + 1
        for match in HEADING_REF.finditer(bracket.group(1)):
            yield Citation(line, match.group(1), heading=match.group(2).strip())


def resolve(doc: str, citing: Path, root: Path = ROOT, package: Path = PACKAGE) -> Path | None:
    """The file a citation names: looked for in the citing file's folder and each folder above
    it up to ``root``, then under ``package`` (for ``<vendor>/API.md``); a ``FIDELITY.md`` is
    also looked for in an ``emulator/`` folder there."""
    written = PurePosixPath(doc)
    names = [written]
    if written.name == "FIDELITY.md" and "emulator" not in written.parts:
        names.append(written.parent / "emulator" / written.name)
    folders = [
        folder for folder in (citing.parent, *citing.parent.parents) if folder.is_relative_to(root)
    ]
    for folder in (*folders, package):
        for name in names:
            target = (folder / name).resolve()
            if target.is_file() and target.is_relative_to(root):
                return target
    return None


def headings(doc: Path) -> tuple[set[str], set[str]]:
    """The section numbers and the (normalised) heading texts of a Markdown file, with and
    without their numbers; headings inside fenced code do not count."""
    numbers: set[str] = set()
    titles: set[str] = set()
    fenced = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = HEADING.match(line)
        if fenced or not match:
            continue
        titles.add(_norm(match.group(1)))
        numbered = NUMBERED.match(match.group(1))
        if numbered:
            numbers.add(numbered.group(1))
            titles.add(_norm(numbered.group(2)))
    return numbers, titles


def problems(citing: Path, text: str, root: Path = ROOT, package: Path = PACKAGE) -> Iterator[str]:
    """One message per citation in ``text`` (read from ``citing``) that does not resolve."""
    where = citing.relative_to(root) if citing.is_relative_to(root) else citing
    for cite in citations(text):
        target = resolve(cite.doc, citing, root, package)
        if target is None:
            yield f"{where}:{cite.line}: {cite.doc} not found"
            continue
        numbers, titles = headings(target)
        if cite.section is not None:
            chapter = cite.section + "."
            if cite.section not in numbers and not any(n.startswith(chapter) for n in numbers):
                yield f"{where}:{cite.line}: {cite.doc} has no section {cite.section}"
        elif cite.heading is not None and _norm(cite.heading) not in titles:
            yield f"{where}:{cite.line}: {cite.doc} has no heading {cite.heading!r}"


def tracked_files() -> list[Path]:
    """The repository's tracked .py and .md files, vendor specs and this file left out."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--", "*.py", "*.md"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [
        ROOT / name
        for name in listed.split("\0")
        if name
        and not name.startswith(SKIPPED)
        and (ROOT / name).resolve() != SELF
        and (ROOT / name).is_file()
    ]


def test_given_the_tracked_files_when_resolving_their_citations_then_each_names_a_heading() -> None:
    # Given every tracked source and document
    files = tracked_files()
    # when each citation of an API.md or FIDELITY.md is looked up
    found = 0
    failed: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        found += sum(1 for _ in citations(text))
        failed.extend(problems(path, text))
    # then every one names a file in the repo and a heading of that file
    assert not failed, "citations that do not resolve:\n" + "\n".join(failed)
    # (and the scan did find the code's citations, so it is not passing on nothing)
    assert found > 100


def test_given_the_tracked_files_when_reading_them_then_none_cites_the_retired_notes() -> None:
    # Given every tracked source and document
    files = tracked_files()
    # when each is searched for the names of the notes API.md and FIDELITY.md replaced
    found = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for name in RETIRED
        if name in line
    ]
    # then none is named any more
    assert not found, "files still citing retired notes:\n" + "\n".join(found)


def test_given_each_citation_form_when_parsing_then_every_part_is_found() -> None:
    # Given text with every form the code uses
    text = (
        "a [API.md §1.4, §1.6] b [spec X, API.md §3.4] c [hubspot/API.md §1.5,\n"
        "salesforce/API.md §2.5] (intercom/API.md §3.7-3.8) [FIDELITY.md, Objects]; "
        "[API.md, Property values; FIDELITY.md, Search] Sources: ../API.md §3.\n"
        "[API.md §2.7: 412 JOB_NOT_COMPLETE] not [API.md §1.N] nor [CRM-API.md §1.4]"
    )
    # when it is parsed
    parts = [(c.line, c.doc, c.section or c.heading) for c in citations(text)]
    # then each cited part is found once, with its line, and nothing else is
    assert sorted(parts) == sorted(
        [
            (1, "API.md", "1.4"),
            (1, "API.md", "1.6"),
            (1, "API.md", "3.4"),
            (1, "hubspot/API.md", "1.5"),
            (2, "salesforce/API.md", "2.5"),
            (2, "intercom/API.md", "3.7"),
            (2, "intercom/API.md", "3.8"),
            (2, "FIDELITY.md", "Objects"),
            (2, "API.md", "Property values"),
            (2, "FIDELITY.md", "Search"),
            (2, "../API.md", "3"),
            (3, "API.md", "2.7"),
        ]
    )


def test_given_citations_of_missing_sections_and_headings_when_checking_then_each_is_reported(
    tmp_path: Path,
) -> None:
    # Given a vendor folder whose API.md has one section and whose emulator has fidelity notes
    vendor = tmp_path / "pkg" / "acme"
    (vendor / "emulator").mkdir(parents=True)
    (vendor / "API.md").write_text(
        "# Acme\n\n## 1.4 Search\n\n```\n## 1.5 Not a heading (fenced)\n```\n", encoding="utf-8"
    )
    (vendor / "emulator" / "FIDELITY.md").write_text("# Acme emulator\n\n## Objects\n")
    citing = vendor / "emulator" / "app.py"
    outside = tmp_path / "tests" / "test_acme.py"
    # when citations that resolve and citations that do not are checked
    good = "[API.md §1.4] [API.md §1] [FIDELITY.md, Objects] [../API.md, Search]"
    bad = "[API.md §1.5] [API.md §2] [FIDELITY.md, Batch] [API.md, Objects] [acme/API.md §9.9]"
    found_good = list(problems(citing, good, tmp_path, tmp_path / "pkg"))
    found_bad = list(problems(citing, bad, tmp_path, tmp_path / "pkg"))
    from_outside = list(
        problems(outside, "[acme/API.md §1.4] [API.md §1.4]", tmp_path, tmp_path / "pkg")
    )
    # then only the broken ones are reported, each naming what is missing
    assert found_good == []
    assert found_bad == [
        "pkg/acme/emulator/app.py:1: API.md has no section 1.5",
        "pkg/acme/emulator/app.py:1: API.md has no section 2",
        "pkg/acme/emulator/app.py:1: acme/API.md has no section 9.9",
        "pkg/acme/emulator/app.py:1: FIDELITY.md has no heading 'Batch'",
        "pkg/acme/emulator/app.py:1: API.md has no heading 'Objects'",
    ]
    # and outside a vendor folder only the vendor's path resolves
    assert from_outside == ["tests/test_acme.py:1: API.md not found"]
