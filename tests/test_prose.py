"""The prose checker (zsl_lib.prose) on a small fixture chapter: it names every kind of problem,
and passes what the rules allow."""
import json

from zsl_lib import prose


def chapter(tmp_path, markdown: list[str], code: list[str] = ()):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
    cells += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    path = tmp_path / "03_fixture.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_the_checker_names_each_kind_of_problem(tmp_path):
    page = chapter(tmp_path, [
        "The run took 133 s and reached H 64.2 %, with a spread of 3 ± 1 points.",
        "It beats {glue:text}`never_glued:.1f` points; see the spec, and chapter 42 for more.",
        "H {glue:text}`ch3_h:.1f} and {glue:text}`ch3_h:.1f` again.",
    ], code=['glue("ch3_h", 64.2, display=False)'])
    found = prose.check(page, known_chapters={1, 2, 3})
    kinds = [(p.kind, p.text) for p in found]
    assert ("number not glued", "133 s") in kinds and ("number not glued", "64.2 %") in kinds
    assert ("number not glued", "3 ± 1") in kinds
    assert ("glue key no cell defines", "never_glued") in kinds
    assert any(kind == "wording 'spec'" for kind, _ in kinds)
    assert ("chapter not in _toc.yml", "chapter 42") in kinds
    assert ("glue role not closed by its backtick", "{glue:text}`ch3_h:.1f} and {glue:text}`") in kinds
    assert len(found) == 7


def test_glued_math_code_references_paper_numbers_and_the_allow_list_pass(tmp_path):
    page = chapter(tmp_path, [
        "## 3.2 A section\n\nH is {glue:text}`ch3_h:.1f` % (section 3.1, Eqs. 11-14), with $\\gamma = 0.9$ "
        "and `lr = 0.03`.",
        "The paper reports H 75.7 % on CUB (Table 2). The recipe's rate is 0.03 per step.",
    ], code=['glue("ch3_h", 64.2, display=False)'])
    assert [str(p) for p in prose.check(page, known_chapters={3})] == ["03_fixture.ipynb [cell 1] number not glued: 0.03"]
    assert prose.check(page, ["rate is 0.03"], known_chapters={3}) == []


def test_an_f_string_glue_key_is_a_pattern_for_its_fields_only(tmp_path):
    code = ['for key, column in runs.items():\n'
            '    glue(f"ch3_{key}_{column.replace(\'-\', \'_\')}_H", 1.0, display=False)\n'
            "glue('ch3_plain', 2.0, display=False)"]
    page = chapter(tmp_path, ["H {glue:text}`ch3_paper_T1_H:.1f`, {glue:text}`ch3_plain`, "
                              "{glue:text}`ch3_paper_T1_T1:.1f`, {glue:text}`ch3__H`."], code=code)
    missing = [p.text for p in prose.check(page, known_chapters={3})]
    assert missing == ["ch3_paper_T1_T1", "ch3__H"]     # the suffix must match, and a field is never empty


def test_an_allow_list_entry_needs_a_reason(tmp_path):
    path = tmp_path / "allow.yml"
    path.write_text("03_fixture.ipynb:\n  - text: rate is 0.03\n")
    try:
        prose.load_allow(path)
    except ValueError as err:
        assert "has no reason" in str(err)
    else:
        raise AssertionError("an entry without a reason was accepted")


def test_every_page_of_the_book_passes_the_checker():
    problems = prose.check_book()
    assert not problems, "\n".join(map(str, problems))
