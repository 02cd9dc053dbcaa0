"""LongBench v1 scored against values from LongBench's own code: for each of the 21 datasets, hand-made
predictions (empty replies, several golds, Chinese, case, punctuation, leading zeros, code comments, class names
inside others) with the score LongBench gives them.

The values were computed once, outside this project, by running THUDM/LongBench's LongBench/metrics.py and the
per-record loop of its eval.py (commit 2e00731f8d0bff23dc4325161044d0ed8af94c1e) under Python 3.11 with the
packages its requirements name (rouge 1.0.1, jieba 0.42.1, fuzzywuzzy 0.18.0 without python-Levenshtein); the
printed dataset scores are eval.py's ``scorer`` on each dataset's cases. Nothing of that code is in the project.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from longscope.analysis.benchmarks import published_score
from longscope.scoring import score, score_with_details
from longscope.tasks.benchmarks.longbench import V1_ORDER, LongBench

GOV = (
    "The Government Accountability Office reviewed rural clinic staffing. Staffing fell by ten percent while "
    "visits rose. GAO recommends that the agency track vacancies."
)
QMS = "The group decided to use a rubber case. Marketing wanted bright colours, but the designer preferred grey."
NEWS = (
    "A storm hit the coast on Monday, cutting power to 20,000 homes. Officials said repairs would take a week. "
    "Schools stayed closed."
)
SAM = "Amanda baked cookies and will bring Jerry some tomorrow."
VC = "会议讨论了新产品的发布计划，决定下个月上线。市场部负责宣传。"
DU = "北京是中国的首都，也是政治和文化中心。"
TREC = ["Other location", "location", "Other", "City", "Country", "Date", "Other number", "number"]
LSHT = ["财经", "国际", "国际财经", "体育", "国内", "教育"]
# One sentence of 995 distinct words: tracing its LCS back needs more nested calls than the rouge package
# survives in LongBench's eval.py, which scores the RecursionError 0; 900 words still go through.
LONG_995 = " ".join(f"w{i}" for i in range(995))
LONG_900 = " ".join(f"w{i}" for i in range(900))

# (dataset, prediction, gold answers, all_classes, LongBench's score)
OFFICIAL = [
    ("narrativeqa", "", ["Mark Twain"], None, 0.0),
    ("narrativeqa", "The Cat, in the HAT!", ["cat in hat"], None, 1.0),
    ("narrativeqa", "He went to Paris", ["Paris", "to Paris, France"], None, 0.5714285714285715),
    ("narrativeqa", "Edmund's brother", ["Edmund"], None, 0.0),
    ("narrativeqa", "Mr. Darcy-Fitzwilliam", ["Darcy Fitzwilliam"], None, 0.0),
    ("narrativeqa", "the a an", ["the"], None, 0.0),
    ("qasper", "unanswerable", ["Unanswerable"], None, 1.0),
    ("qasper", "Yes.", ["no", "yes"], None, 1.0),
    ("qasper", "", ["BERT"], None, 0.0),
    ("qasper", "BERT, ELMo and GloVe embeddings", ["BERT and ELMo", "GloVe"], None, 0.7499999999999999),
    ("qasper", "They use 3 layers\nwith dropout", ["3 layers"], None, 0.5),
    ("multifieldqa_en", "1,024 units", ["1024 units"], None, 1.0),
    ("multifieldqa_en", "   ", ["anything"], None, 0.0),
    ("multifieldqa_en", "The answer is 42.", ["42", "forty-two"], None, 0.5),
    ("multifieldqa_en", "résumé café", ["Resume cafe"], None, 0.0),
    ("multifieldqa_en", "“Quoted” answer", ["quoted answer"], None, 0.5),
    ("multifieldqa_zh", "Apple公司", ["apple公司"], None, 1.0),
    ("multifieldqa_zh", "《红楼梦》", ["红楼梦"], None, 0.6666666666666666),
    ("multifieldqa_zh", "约翰·史密斯", ["约翰史密斯"], None, 0.8),
    ("multifieldqa_zh", "", ["北京"], None, 0.0),
    ("multifieldqa_zh", "我爱北京", ["故宫", "我爱北京天安门"], None, 0.8571428571428571),
    ("multifieldqa_zh", "北京！", ["北京"], None, 1.0),
    ("multifieldqa_zh", "「清华大学」", ["清华大学"], None, 1.0),
    ("hotpotqa", "Yes", ["yes"], None, 1.0),
    ("hotpotqa", "the the the", ["the"], None, 0.0),
    ("hotpotqa", "Barack Obama", ["Obama", "Barack Hussein Obama"], None, 0.8),
    ("hotpotqa", "", ["Paris"], None, 0.0),
    ("hotpotqa", "Paris paris PARIS", ["Paris"], None, 0.5),
    ("2wikimqa", "December 25, 1990", ["25 December 1990"], None, 1.0),
    ("2wikimqa", "He was born in London.", ["London"], None, 0.33333333333333337),
    ("2wikimqa", "no", ["No", "Yes"], None, 1.0),
    ("2wikimqa", "", ["No"], None, 0.0),
    ("2wikimqa", "U.S.A.", ["USA"], None, 1.0),
    ("musique", "1945", ["1945"], None, 1.0),
    ("musique", "In 1945 and 1946", ["1945"], None, 0.4),
    ("musique", "", ["1945"], None, 0.0),
    ("musique", "A Tale of Two Cities", ["Tale of Two Cities", "Dickens"], None, 1.0),
    ("musique", "Tale-of-Two-Cities", ["Tale of Two Cities"], None, 0.0),
    ("dureader", "", [DU], None, 0.0),
    ("dureader", DU, [DU], None, 0.999999995),
    ("dureader", "北京是首都", ["故宫在北京", "北京是中国的首都"], None, 0.7499999953125),
    ("dureader", "首都是北京. 中国的政治中心", [DU], None, 0.6315789427146814),
    ("dureader", "Beijing 是中国的首都", ["beijing 是中国的首都"], None, 0.7999999950000002),
    ("dureader", "...", [DU], None, 0.0),
    ("gov_report", "", [GOV], None, 0.0),
    (
        "gov_report",
        "GAO reviewed rural clinic staffing. Staffing fell while visits rose. GAO recommends tracking vacancies.",
        [GOV],
        None,
        0.6666666620524693,
    ),
    (
        "gov_report",
        "the government accountability office reviewed rural clinic staffing",
        [GOV],
        None,
        0.3225806413319459,
    ),
    (
        "gov_report",
        "Staffing fell, visits rose, and GAO recommends that the agency track vacancies",
        [GOV],
        None,
        0.514285709779592,
    ),
    ("gov_report", "...", [GOV], None, 0.0),
    ("gov_report", "Staffing fell. Staffing fell. Staffing fell.", [GOV, "Staffing fell"], None, 0.999999995),
    ("gov_report", LONG_995, ["w1 w2 w3"], None, 0.0),
    ("gov_report", LONG_900, ["w1 w2 w3"], None, 0.006644518206200815),
    ("qmsum", "", [QMS], None, 0.0),
    (
        "qmsum",
        "The group chose a rubber case.\nMarketing wanted bright colours.",
        [QMS],
        None,
        0.5925925879286695,
    ),
    ("qmsum", "THE GROUP DECIDED TO USE A RUBBER CASE.", [QMS], None, 0.0),
    (
        "qmsum",
        "They decided to use a rubber case, and the designer preferred grey",
        [QMS],
        None,
        0.6206896503210465,
    ),
    ("qmsum", "Rubber case. Bright colours. Grey.", ["Bright colours", QMS], None, 0.5714285673469389),
    ("multi_news", "", [NEWS], None, 0.0),
    ("multi_news", NEWS, [NEWS], None, 0.999999995),
    (
        "multi_news",
        "A storm hit the coast on Monday. Power was cut to 20,000 homes. Repairs will take a week.",
        [NEWS],
        None,
        0.5999999950500001,
    ),
    ("multi_news", "Storm storm storm storm. Power power.", [NEWS], None, 0.1538461512426036),
    (
        "multi_news",
        "Schools stayed closed . Officials said repairs would take a week",
        [NEWS],
        None,
        0.624999995703125,
    ),
    ("vcsum", "", [VC], None, 0.0),
    ("vcsum", VC, [VC], None, 0.999999995),
    ("vcsum", "会议决定下个月上线新产品。", [VC], None, 0.43478260446124767),
    ("vcsum", "会议讨论了发布计划. 市场部负责宣传", [VC], None, 0.6666666622222223),
    ("vcsum", "The meeting 讨论了 Launch 计划", ["the meeting 讨论了 launch 计划"], None, 0.6666666616666668),
    ("vcsum", LONG_995, ["w1 w2"], None, 0.0),
    ("trec", "Type: Other location", ["Other location"], TREC, 0.5),
    ("trec", "City\nType: Date", ["City"], TREC, 1.0),
    ("trec", "", ["City"], TREC, 0.0),
    ("trec", "Country or City", ["City"], TREC, 0.5),
    ("trec", "Other number", ["Other number"], TREC, 1.0),
    ("trec", "\n\nDate", ["Date"], TREC, 1.0),
    ("trec", "city", ["City"], TREC, 0.0),
    ("triviaqa", "Paris\nQuestion: What is the capital of England? Answer: London", ["Paris"], None, 1.0),
    ("triviaqa", "\n\nParis", ["paris"], None, 1.0),
    ("triviaqa", "  \nParis", ["Paris"], None, 0.0),
    ("triviaqa", "", ["Paris"], None, 0.0),
    ("triviaqa", "The Beatles", ["Beatles", "The Beatles (band)"], None, 1.0),
    ("triviaqa", "Paris\r\nLondon", ["Paris"], None, 1.0),
    (
        "samsum",
        "Amanda baked cookies and will bring Jerry some tomorrow.\nDialogue: Tom: hi",
        [SAM],
        None,
        0.999999995,
    ),
    ("samsum", "\nAmanda baked cookies.", [SAM], None, 0.4999999962500001),
    ("samsum", "", [SAM], None, 0.0),
    ("samsum", "Amanda will bring Jerry cookies tomorrow", [SAM], None, 0.6666666618666668),
    ("samsum", "amanda baked cookies and will bring jerry some tomorrow.", [SAM], None, 0.7777777727777778),
    ("samsum", "...\nAmanda baked cookies.", [SAM], None, 0.0),
    ("lsht", "国际财经", ["国际财经"], LSHT, 0.5),
    ("lsht", "体育", ["体育"], LSHT, 1.0),
    ("lsht", "", ["体育"], LSHT, 0.0),
    ("lsht", "体育\n类别：教育", ["体育"], LSHT, 1.0),
    ("lsht", "国内教育", ["教育"], LSHT, 0.5),
    ("lsht", "财经", ["国际财经"], LSHT, 0.0),
    ("passage_count", "07", ["7"], None, 0.0),
    ("passage_count", "7", ["7"], None, 1.0),
    ("passage_count", "There are 7 or 8", ["7"], None, 0.5),
    ("passage_count", "", ["7"], None, 0.0),
    ("passage_count", "seven", ["7"], None, 0.0),
    ("passage_count", "7.0", ["7"], None, 0.5),
    ("passage_count", "７", ["7"], None, 0.0),
    ("passage_retrieval_en", "Paragraph 012", ["Paragraph 12"], None, 0.0),
    ("passage_retrieval_en", "Paragraph 12", ["Paragraph 12"], None, 1.0),
    ("passage_retrieval_en", "paragraph 12 and Paragraph 3", ["Paragraph 12"], None, 0.5),
    ("passage_retrieval_en", "", ["Paragraph 12"], None, 0.0),
    ("passage_retrieval_en", "The answer is Paragraph 12.", ["Paragraph 12"], None, 1.0),
    ("passage_retrieval_en", "Paragraph 120", ["Paragraph 12"], None, 0.0),
    ("passage_retrieval_zh", "段落12", ["段落12"], None, 1.0),
    ("passage_retrieval_zh", "段落012", ["段落12"], None, 0.0),
    ("passage_retrieval_zh", "答案是段落3，段落12", ["段落12"], None, 0.5),
    ("passage_retrieval_zh", "", ["段落12"], None, 0.0),
    ("passage_retrieval_zh", "第12段", ["段落12"], None, 1.0),
    ("lcc", "x = compute(a, b)  # add them", ["x = compute(a, b)"], None, 0.0),
    ("lcc", "```python\n\nreturn a + b\n```", ["return a + b"], None, 0.0),
    ("lcc", "    return total", ["return total"], None, 0.86),
    ("lcc", "", ["foo()"], None, 0.0),
    ("lcc", "print(x)  // debug\nprint(y)", ["print(y)"], None, 1.0),
    ("lcc", "url = 'http://example.com'", ["url = 'http://example.com'"], None, 0.0),
    ("lcc", "abc", ["abd"], None, 0.67),
    ("lcc", "\n\nfoo()", ["foo()"], None, 1.0),
    ("repobench-p", "self.assertEqual(a, b)", ["self.assertEqual(a, b)"], None, 1.0),
    ("repobench-p", "# comment\nself.x = 1", ["self.x = 1"], None, 1.0),
    ("repobench-p", 's = f"{a}#{b}"\nt = 2', ['s = f"{a}#{b}"'], None, 0.32),
    ("repobench-p", "", ["x = 1"], None, 0.0),
    ("repobench-p", "x0x", ["0[nx"], None, 0.29),
    ("repobench-p", "  \nself.run()", ["self.run()"], None, 0.0),
    ("repobench-p", "return self.model(x, y)", ["return self.model(y, x)", "pass"], None, 0.91),
]

# eval.py's printed score of each dataset over the cases above: round(100 * mean, 2).
OFFICIAL_PRINTED = {
    "narrativeqa": 26.19, "qasper": 65.0, "multifieldqa_en": 40.0, "multifieldqa_zh": 76.05, "hotpotqa": 46.0,
    "2wikimqa": 66.67, "musique": 48.0, "dureader": 53.03, "gov_report": 31.38, "qmsum": 35.69,
    "multi_news": 47.58, "vcsum": 46.14, "trec": 57.14, "triviaqa": 66.67, "samsum": 49.07, "lsht": 50.0,
    "passage_count": 28.57, "passage_retrieval_en": 41.67, "passage_retrieval_zh": 50.0, "lcc": 44.12,
    "repobench-p": 50.29,
}  # fmt: skip


def _ours(dataset: str, prediction: str, answers: list[str], classes: list[str] | None) -> float:
    return score(LongBench.dataset_metric(dataset), prediction, answers, {"all_classes": classes})


def test_every_dataset_has_at_least_five_cases():
    counts = defaultdict(int)
    for dataset, *_ in OFFICIAL:
        counts[dataset] += 1
    assert set(counts) == set(V1_ORDER) == set(OFFICIAL_PRINTED)
    assert min(counts.values()) >= 5


@pytest.mark.parametrize(
    ("dataset", "prediction", "answers", "classes", "official"),
    OFFICIAL,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(OFFICIAL)],
)
def test_scores_equal_longbenchs_own(dataset, prediction, answers, classes, official):
    assert _ours(dataset, prediction, answers, classes) == pytest.approx(official, rel=1e-12, abs=1e-12)
    # The same through per_record, as a run of all of LongBench scores it.
    meta = {"metric": LongBench.dataset_metric(dataset), "all_classes": classes}
    assert score("per_record", prediction, answers, meta) == pytest.approx(official, rel=1e-12, abs=1e-12)


def test_printed_dataset_scores_equal_evals():
    by_dataset = defaultdict(list)
    for dataset, prediction, answers, classes, _ in OFFICIAL:
        # As ScoreCell keeps them: each score on the 0-100 scale.
        by_dataset[dataset].append(100.0 * _ours(dataset, prediction, answers, classes))
    printed = {d: published_score("longbench", sum(v) / len(v)) for d, v in by_dataset.items()}
    assert printed == OFFICIAL_PRINTED


def test_a_reply_the_rouge_package_raises_on_scores_zero_with_the_reason():
    value, details = score_with_details("longbench_rouge_l", "...", [GOV])
    assert value == 0.0 and "Hypothesis is empty" in details["reason"]
    value, details = score_with_details("longbench_rouge_l", LONG_995, ["w1 w2 w3"])
    assert value == 0.0 and "RecursionError" in details["reason"]
    # A gold that raises does not hide another that scores: the best counts, and the reason is still given.
    value, details = score_with_details("longbench_rouge_l", "Staffing fell", ["...", "Staffing fell"])
    assert value == pytest.approx(1.0, abs=1e-7) and "gold 1" in details["reason"]
    assert score_with_details("longbench_rouge_l", "Staffing fell", ["Staffing fell"])[1] == {}
