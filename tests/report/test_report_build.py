"""Whole reports from planted results: files, numbers, links, escaping, reruns."""

from __future__ import annotations

import html.parser
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest
from report_fixtures import PLANTED_VERDICTS, make_results

from bench.report import build_report, figures, latex
from bench.report.build import MANIFEST

REPO = Path(__file__).resolve().parents[2]
QUICK_FIGURES = {spec.name for spec in figures.FIGURES} - {"train_size"}


def assert_png(path: Path, min_bytes: int = 20_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 300 and height >= 300, (path, width, height)
    assert len(data) >= min_bytes, (path, len(data))


def assert_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) >= 8_000, path
    assert b"/Type3" not in data, path  # TrueType fonts: editable, accepted by publishers


# --- the cpu-quick-like report -------------------------------------------------------------


def test_every_figure_is_written_and_non_trivial(quick):
    names = {p.stem for p in (quick.out / "figures").iterdir()}
    assert names == QUICK_FIGURES
    for name in QUICK_FIGURES:
        assert_png(quick.out / "figures" / f"{name}.png")
        assert_pdf(quick.out / "figures" / f"{name}.pdf")


def test_summary_numbers_match_the_runs(quick):
    summary = pd.read_csv(quick.out / "summary.csv")
    ok = quick.runs[quick.runs["status"] == "ok"].copy()
    ok["arm"] = ok["regularizer"].where(
        ok["schedule"] == "constant", ok["regularizer"] + " (" + ok["schedule"] + ")"
    )
    expected = ok.groupby(["protocol", "arm"])["test_acc"].agg(["mean", "std", "count"])
    for _, row in summary.iterrows():
        want = expected.loc[(row["protocol"], row["arm"])]
        assert row["test_acc_mean"] == pytest.approx(want["mean"], abs=1e-12)
        assert row["test_acc_std"] == pytest.approx(want["std"], abs=1e-12)  # ddof=1
        assert row["test_acc_n"] == want["count"]
    assert len(summary) == 15
    mixup = summary[(summary["protocol"] == "frozen") & (summary["arm"] == "mixup")].iloc[0]
    assert (mixup["n"], mixup["n_failed"]) == (2, 1)  # the failed cell is counted, not averaged


def test_markdown_and_latex_tables_show_the_summary(quick):
    summary = pd.read_csv(quick.out / "summary.csv")
    row = summary[(summary["protocol"] == "frozen") & (summary["arm"] == "cutmix")].iloc[0]
    cell = f"{100 * row['test_acc_mean']:.2f} ± {100 * row['test_acc_std']:.2f}"
    md = (quick.out / "tables" / "summary.md").read_text()
    assert f"| frozen | cutmix | 3 | **{cell}** |" in md  # significantly better than none
    assert "| frozen | mixup | 2 (+1 failed) |" in md
    tex = (quick.out / "tables" / "summary.tex").read_text()
    assert cell.replace("±", r"$\pm$") in tex
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{longtable}"):
        assert rule in tex
    assert "Random Erasing" in tex and "CutMix (staged)" in tex  # display names ...
    assert r"random\_erasing" not in tex  # ... not code names
    assert r"\caption{" in tex and r"\label{tab:regbench-" in tex


def test_robustness_table_shows_occlusion_and_corruption(quick):
    summary = pd.read_csv(quick.out / "summary.csv")
    row = summary[(summary["protocol"] == "frozen") & (summary["arm"] == "mixup")].iloc[0]
    md = (quick.out / "tables" / "robustness.md").read_text()
    assert "occluded acc. (%)" in md and "corrupted ECE (%)" in md
    occluded = f"{100 * row['occlusion_acc_mean']:.2f} ± {100 * row['occlusion_acc_std']:.2f}"
    assert "| frozen | mixup | 2 (+1 failed) | " in md and occluded in md


def test_bold_marks_significant_paired_wins_over_none_only(quick):
    summary = pd.read_csv(quick.out / "summary.csv")
    frozen = summary[summary["protocol"] == "frozen"].set_index("arm")
    # planted: cutmix +2 pp and staged cutmix +3 pp above none, with a tiny seed spread
    assert frozen.loc[["cutmix", "cutmix (staged)"], "test_acc_beats_none"].all()
    assert not frozen.loc["none", "test_acc_beats_none"]  # the baseline is never bold
    assert frozen.loc["cutmix", "test_ece_beats_none"]  # lower ECE than none
    assert not frozen.loc["mixup", "test_ece_beats_none"]  # higher ECE: worse, never bold
    assert not frozen["flip_rate_beats_none"].any()  # planted: no difference
    assert not frozen["train_acc_beats_none"].any()  # higher clean-train accuracy is not "better"
    assert not summary["train_images_per_s_beats_none"].any()  # throughput: never bold
    tex = (quick.out / "tables" / "summary.tex").read_text()
    best = frozen.loc["cutmix (staged)"]
    assert rf"\textbf{{{100 * best['test_acc_mean']:.2f} $\pm$" in tex
    md = (quick.out / "tables" / "summary.md").read_text()
    assert f"**{100 * best['test_acc_mean']:.2f} ±" in md
    none = frozen.loc["none"]
    assert f"**{100 * none['test_acc_mean']:.2f}" not in md


def test_latex_uses_true_minus_signs_and_claims_fit_a_page(quick):
    claims = (quick.out / "tables" / "claims.tex").read_text()
    body = [line for line in claims.splitlines() if not line.startswith("%")]
    assert "$-$" in claims
    assert not re.search(r"(?<![\w$])-\d", "\n".join(body))  # no hyphen as a minus sign
    assert rf"\begin{{longtable}}{{{latex.CLAIMS_SPEC}}}" in claims
    assert r"\footnotesize" in claims and r"\label{tab:regbench-fixture-claims}" in claims
    robustness = (quick.out / "tables" / "robustness.tex").read_text()
    assert r"\toprule" in robustness and "occluded acc." in robustness


def test_claims_csv_has_the_planted_verdicts(quick):
    claims = pd.read_csv(quick.out / "claims.csv", keep_default_na=False)
    for claim_id, verdict in PLANTED_VERDICTS.items():
        rows = claims[claims["claim_id"] == claim_id]
        full = rows[(rows["n"] >= 3) | (rows["verdict"] == "not measured")]  # a failed cell: 2
        assert set(full["verdict"]) == {verdict}, claim_id


def test_report_states_method_and_provenance(quick):
    page = quick.index.read_text()
    for text in ("ddof=1", "95% Student-t", "BCa", "paired t-test", "Holm", "TOST", "margin",
                 "What a verdict means", "cover seeds only", "2.14.1"):  # fmt: skip
        assert text in page, text
    assert "1.0.31" in page and "e20490d" in page and "cpu" in page
    assert "1 of 45 cells failed" in page
    md = (quick.out / "report.md").read_text()
    assert "ddof=1" in md and "e20490d" in md
    assert "non-finite loss at epoch 3 step 41" in page and "non-finite loss" in md


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids, self.tags = [], set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src"):
                self.refs.append(value)
            if name == "id":
                self.ids.add(value)


def _resolves(out: Path, ref: str) -> bool:
    assert not re.match(r"^[a-z]+:", ref), f"absolute link {ref}"  # relative only, no network
    target = (out / unquote(ref)).resolve()
    return target.is_file() and out.resolve() in target.parents


def test_every_link_and_image_resolves(quick):
    parser = _Links()
    parser.feed(quick.index.read_text())
    assert parser.refs
    for ref in parser.refs:
        if ref.startswith("#"):
            assert ref[1:] in parser.ids, ref
        else:
            assert _resolves(quick.out, ref), ref
    assert "script" not in parser.tags
    md = (quick.out / "report.md").read_text()
    md_refs = re.findall(r"\]\(([^)]+)\)", md)
    assert len([r for r in md_refs if r.endswith(".png")]) == len(QUICK_FIGURES)
    for ref in md_refs:
        if not ref.startswith("#"):
            assert _resolves(quick.out, ref), ref
    written = (quick.out / MANIFEST).read_text().split()
    for name in written:  # every figure the report wrote is shown or linked
        assert (quick.out / name).is_file()
        if name.startswith("figures/"):
            assert name in parser.refs and name in md_refs, name


# --- faceted by backbone and train size ------------------------------------------------------


def test_train_size_figure_and_facets(sizes):
    names = {p.stem for p in (sizes.out / "figures").iterdir()}
    assert "train_size" in names and "robustness_corruptions" not in names
    assert_png(sizes.out / "figures" / "train_size.png")
    summary = pd.read_csv(sizes.out / "summary.csv")
    assert len(summary) == 3 * 2 * 2  # arms x backbones x train sizes, never pooled
    assert set(summary["backbone"]) == {"resnet18", "tf_efficientnet_lite0"}
    md = (sizes.out / "tables" / "summary.md").read_text()
    assert md.startswith("| protocol | backbone | train_size | regularizer | n |")
    claims = pd.read_csv(sizes.out / "claims.csv", keep_default_na=False)
    tiny = claims[claims["claim_id"] == "cutmix_struggles_tiny_data"]
    assert set(tiny["verdict"]) == {"supported"} and len(tiny) == 2


# --- a single seed ---------------------------------------------------------------------------


def test_single_seed_report_says_so(single):
    page = single.index.read_text()
    assert "single seed" in page
    summary = pd.read_csv(single.out / "summary.csv")
    assert (summary["n"] == 1).all() and summary["test_acc_std"].isna().all()
    claims = pd.read_csv(single.out / "claims.csv", keep_default_na=False)
    assert set(claims["verdict"]) <= {"inconclusive", "not measured"}
    measured = claims[claims["verdict"] == "inconclusive"]
    assert len(measured) and (measured["ci_low"] == "").all()
    md = (single.out / "tables" / "summary.md").read_text()
    assert "±" not in md.split("\n\n")[0]  # no spread in the table itself
    assert_png(single.out / "figures" / "gap.png")


# --- all cells failed, reruns ----------------------------------------------------------------


def _all_failed(folder: Path) -> None:
    arms = [("none", "constant"), ("cutmix", "constant")]
    failed = {(a, "frozen", s) for a in ("none", "cutmix") for s in (0, 1)}
    make_results(folder, arms=arms, protocols=("frozen",), seeds=(0, 1), failed=failed)


def test_all_failed_gives_a_marked_report(tmp_path, capsys):
    from bench.cli.report import main

    _all_failed(tmp_path / "results")
    assert main([str(tmp_path / "results"), "--out", str(tmp_path / "report")]) == 0
    assert "All 4 cells failed" in capsys.readouterr().err
    page = (tmp_path / "report" / "index.html").read_text()
    assert "All 4 cells failed" in page and page.count("non-finite loss") == 4
    claims = pd.read_csv(tmp_path / "report" / "claims.csv", keep_default_na=False)
    assert set(claims["verdict"]) == {"not measured"}
    assert not (tmp_path / "report" / "figures").exists()
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert list(summary["n"]) == [0, 0] and list(summary["n_failed"]) == [2, 2]


def test_rerun_removes_stale_files_and_keeps_foreign_ones(tmp_path):
    arms = [("none", "constant"), ("cutmix", "constant")]
    make_results(tmp_path / "a", arms=arms, protocols=("frozen",), seeds=(0, 1))
    out = tmp_path / "report"
    build_report(tmp_path / "a", out)
    assert (out / "figures" / "gap.png").is_file()
    (out / "my-notes.txt").write_text("mine")
    (out / "figures" / "mine.png").write_bytes(b"x")
    _all_failed(tmp_path / "b")
    build_report(tmp_path / "b", out)
    assert not (out / "figures" / "gap.png").exists()
    assert not (out / "figures" / "gap.pdf").exists()
    assert (out / "my-notes.txt").read_text() == "mine"
    assert (out / "figures" / "mine.png").is_file()
    assert not list(out.glob(".staging-*"))
    assert "All 4 cells failed" in (out / "index.html").read_text()


# --- untrusted text --------------------------------------------------------------------------


def test_csv_text_is_escaped_everywhere(tmp_path):
    runs = make_results(
        tmp_path / "results",
        arms=[("none", "constant"), ("cutmix", "constant")],
        protocols=("frozen",),
        seeds=(0, 1),
        failed={("none", "frozen", 1)},
        error='<img src=x onerror="alert(1)">',
    )
    evil = "<script>alert('x')</script>$\\frac{1}{0}$"
    runs["regularizer"] = runs["regularizer"].replace("cutmix", evil)
    runs["backbone"] = "<b>bold</b>|pipe"
    runs["device"] = "<iframe src=//evil>"
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    index = build_report(tmp_path / "results", tmp_path / "report")
    page = index.read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page and "<iframe" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    md = (tmp_path / "report" / "report.md").read_text()
    assert "<script" not in md and "<img" not in md and "<iframe" not in md
    assert "&lt;script&gt;" in md and r"\|pipe" in md
    tex = (tmp_path / "report" / "tables" / "summary.tex").read_text()
    assert r"\textless{}script\textgreater{}" in tex and r"\$\textbackslash{}frac" in tex
    assert_png(tmp_path / "report" / "figures" / "gap.png", min_bytes=5_000)


# --- no torch --------------------------------------------------------------------------------


def test_report_runs_without_importing_torch(tmp_path):
    # a staged arm: the schedule figure draws from regularizers.schedules, which must not
    # import torch either
    make_results(tmp_path / "results", arms=[("none", "constant"), ("cutmix", "staged")],
                 protocols=("frozen",), seeds=(0, 1))  # fmt: skip
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        f"rc = main(['report', {str(tmp_path / 'results')!r}])\n"
        "assert rc == 0, rc\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
        "print('no torch')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no torch" in done.stdout
    assert (tmp_path / "reports" / "fixture" / "index.html").is_file()  # the default --out


def test_report_package_does_not_import_training_code():
    for path in (REPO / "bench" / "report").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torch|timm)\b", text, re.M), path
        # the schedules only (no torch behind them), to draw a schedule from the schedule itself
        for line in re.findall(r"^\s*(?:import|from)\s+regularizers\b.*$", text, re.M):
            assert line.strip().startswith("from regularizers import schedules"), (path, line)
        for module in re.findall(r"^\s*from\s+bench\.(\w+)", text, re.M):
            # the results store's outcomes reader (stdlib + numpy): one reader of that format;
            # bench.files' bounded reads (stdlib); bench.config's declared protocols and seed
            # limit (torch only behind its regularizer checks, never at import); bench.arms'
            # typed arms and scopes (the ground floor: no bench import)
            assert module in ("report", "results", "files", "config", "arms"), (path, module)
        for module in re.findall(r"^\s*from\s+bench\s+import\s+(\w+)", text, re.M):
            assert module == "schema", (path, module)  # column names only
    assert (REPO / "bench" / "__init__.py").read_text().strip() == ""


def test_who_wins_title_is_shown_once(quick):
    """The first figure sits under a section heading of its own name: no second title."""
    markdown = (quick.out / "report.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert sum("Who wins where" in line for line in headings) == 1
    page = (quick.out / "index.html").read_text()
    assert len(re.findall(r"<h[23][^>]*>Who wins where</h[23]>", page)) == 1
    assert "### Generalization gap" in markdown  # the other figures keep their titles


def test_a_missing_protocol_is_named_not_called_the_only_one(sizes):
    """A frozen-only sweep has no unfrozen cells: the unfreezing claim says so."""
    text = (sizes.out / "claims.csv").read_text()
    assert "the sweep has no unfrozen cells (protocols: frozen)" in text
    assert "one protocol only" not in text
