"""The README and docs/: short enough to read, no dead links, speed figures as their result files give them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import speed_doc, speed_results

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text without fenced code blocks (links in code are not links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", prose(page.read_text()), re.M)}


# ----- the link checker itself -----------------------------------------------------------------

def test_links_are_found_with_titles_images_and_brackets_in_the_text():
    text = ('See [a](docs/a.md), ![pic](docs/p.png "title"), [`--size auto`](#--size-auto), '
            '[[x]](b.md#part) and [two\nlines](c.md).\n```\n[not](code.md)\n```\n')
    assert LINK.findall(prose(text)) == ["docs/a.md", "docs/p.png", "#--size-auto", "b.md#part", "c.md"]


@pytest.mark.parametrize("heading, anchor", [
    ("--size auto", "--size-auto"),
    ("Batches, the encoder's flush and the lite-fr styles", "batches-the-encoders-flush-and-the-lite-fr-styles"),
    ("GPU (CUDA)", "gpu-cuda"),
    ("Chains: is wave→muse like muse?", "chains-is-wavemuse-like-muse"),
    ("`stylecam study`: what repeated filtering does", "stylecam-study-what-repeated-filtering-does"),
])
def test_slug_is_githubs_anchor(heading, anchor):
    assert slug(heading) == anchor


# ----- README and docs ---------------------------------------------------------------------------

def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move details to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files_and_headings(page):
    dead = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):          # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target} (no heading #{anchor} in {file.relative_to(ROOT)})")
    assert not dead, f"{page.relative_to(ROOT)}: dead links: {dead}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README) if not re.match(r"[a-z]+:", t)}
    missing = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_readme_style_table_is_the_shipped_styles_with_their_networks():
    from stylecam.styles import Registry

    shipped = {row["name"]: row["network"] for row in Registry(ROOT / "weights").table()}
    table = re.search(r"^## Styles\n(.*?)^## ", README.read_text(), re.S | re.M).group(1)
    listed = {name: network for name, network in re.findall(r"^\| `(\w+)` \|[^|]*\| `([\w-]+)` \|", table, re.M)}
    assert listed == shipped


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.S | re.M)
    command = next(line for block in blocks for line in block.splitlines() if "pytest" in line)
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


# ----- docs/speed.md and its generator -----------------------------------------------------------

def test_speed_doc_is_what_the_results_give_now():
    assert (DOCS / "speed.md").read_text() == speed_doc.render(), \
        "docs/speed.md is out of date: run `python -m benchmarks.speed_doc`"


def test_speed_doc_check_fails_on_a_stale_page(tmp_path, capsys):
    page = tmp_path / "speed.md"
    page.write_text(speed_doc.render())
    assert speed_doc.main(["--check", "-o", str(page)]) == 0
    page.write_text(speed_doc.render().replace("| 640x480 |", "| 640x480 | 1 |", 1))
    assert speed_doc.main(["--check", "-o", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_speed_doc_says_in_one_line_when_it_cannot_write(tmp_path, capsys):
    assert speed_doc.main(["-o", str(tmp_path / "missing" / "speed.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speed_doc: error: ") and "speed.md" in err[0]
    assert not (tmp_path / "missing").exists()


def test_speed_doc_names_a_result_file_in_every_table_row_and_lists_every_file():
    text = speed_doc.render()
    rows = [line for line in text.splitlines() if line.lstrip().startswith("| ")
            and not re.match(r"\s*\|[-| ]+\|$", line)]
    headers = {line for line in rows if "| source |" in line or line.lstrip().startswith("| file |")}
    data = [row for row in rows if row not in headers]
    assert data and all("../benchmarks/results/" in row for row in data)
    results = ROOT / "benchmarks" / "results"
    for path in results.rglob("*.json"):
        assert f"(../benchmarks/results/{path.relative_to(results)})" in text


def test_span_gives_a_range_or_one_figure():
    assert speed_results.span([24.36, 22.81]) == "22.8-24.4"
    assert speed_results.span([1.601, 1.62]) == "1.6"
    assert speed_results.span([None]) == "-"
    assert speed_results.span([0.223, 0.289], 2) == "0.22-0.29"


def test_machine_text_keeps_what_the_file_records():
    data = {"machine": {"platform": "Linux-x", "processor": "", "cpus": 2, "load_avg_start": [1, 1, 1],
                        "gpu": "NVIDIA H200, 580.159.04"}, "torch": "2.14.1"}
    assert speed_results.machine_text(data) == "platform Linux-x, cpus 2, gpu NVIDIA H200, 580.159.04, torch 2.14.1"
    assert speed_results.machine_text({"device": "x86_64 CPU, 2 threads"}) == "device x86_64 CPU, 2 threads"
    assert speed_results.machine_text({"runs": [{"machine": {"cpus": 16}}]}) == "cpus 16"
