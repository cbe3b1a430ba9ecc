"""How fast the knowledge base (知识库) loads and matches, and how often it would answer a request.

    python bench/knowledge_match.py [--entries 2000] [--show 15]

Prints figures, asserts nothing:

1. Load time (YAML → validated entries → index) and per-message latency of ``answer`` (p50/p99)
   at the shipped size and at N synthetic entries (questions about the official taxonomy's
   subjects, ``../shared/data/taxonomy.csv``, in the ways a city's 政策咨询 entries are asked; made-up
   subjects without the data). The messages timed are the test paraphrases and chat lines and
   1,000 titles and 1,000 details of the real board posts of ``messages.csv``.
2. Recall and false answers at several thresholds, for choosing ``HOTLINE_KNOWLEDGE_THRESHOLD``:
   the paraphrases of tests/nlu/test_knowledge.py (the share answered with their entry; the
   harder ones are not asserted there), its complaints and chat lines, and the real board posts of ``../shared/data/messages.csv``, title
   and detail separately. Those posts are requests to file, so nearly every answer is a false one:
   the few that matched at the default threshold are printed (cut short) for a reader to judge.
   Skipped when the file is absent.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from nlu import knowledge  # noqa: E402
from nlu.knowledge import DEFAULT_THRESHOLD, KnowledgeBase  # noqa: E402
from tests.nlu.test_knowledge import CHAT_LINES, COMPLAINTS, HARDER, PARAPHRASES  # noqa: E402

SHIPPED = ROOT / "config" / "knowledge.yml"
DATA = ROOT.parent / "shared" / "data"
THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
# how a city's 政策咨询 entries are asked: (question, 相似问…) per kind of question
ASKED = [
    ("{t}怎么办理？", "{t}如何办理", "{t}的办理流程是什么", "办理{t}要去哪里", "想办{t}怎么弄"),
    ("{t}需要准备什么材料？", "办{t}要带哪些材料", "{t}所需材料清单", "{t}要提供什么证明"),
    ("{t}归哪个部门管？", "{t}找哪个单位", "{t}由哪个部门负责", "{t}的主管部门是哪个"),
    ("{t}有什么政策？", "{t}的相关规定是什么", "{t}有哪些补贴政策", "关于{t}的政策文件在哪看"),
    ("{t}办理要多长时间？", "{t}多久能办好", "{t}的办理时限是多少天", "{t}几天能出结果"),
    ("{t}收费吗？", "{t}要交多少钱", "{t}的收费标准是什么", "办{t}是免费的吗"),
]


def subjects() -> list[str]:
    """The taxonomy's second- and third-level names (or made-up ones without the data)."""
    path = DATA / "taxonomy.csv"
    if path.exists():
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        names = [r[k].strip() for r in rows for k in ("三级分类", "二级分类")]
        return [n for n in dict.fromkeys(names) if n and n != "其他"]
    return [
        f"{a}{b}"
        for a in ("社保", "医保", "公积金", "户籍", "住房", "教育")
        for b in ("转移", "补贴", "登记", "证明")
    ]


def synthetic(n: int) -> list[dict[str, object]]:
    topics = subjects()
    out: list[dict[str, object]] = []
    for k, asked in enumerate(ASKED):
        for i, t in enumerate(topics):
            if len(out) == n:
                return out
            out.append(
                {
                    "id": f"topic-{i}-{k}",
                    "question": asked[0].format(t=t),
                    "also": [a.format(t=t) for a in asked[1:]],
                    "answer": f"关于{t}，请咨询主管部门或登录政务服务网查询办事指南。",
                    "source": "市政务服务中心",
                }
            )
    return out


def board_posts() -> tuple[list[str], list[str]] | None:
    path = DATA / "messages.csv"
    if not path.exists():
        return None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    titles = [r["留言主题"].strip() for r in rows if r.get("留言主题", "").strip()]
    details = [r["留言详情"].strip() for r in rows if r.get("留言详情", "").strip()]
    return titles, details


def timed_load(path: Path) -> tuple[KnowledgeBase, float]:
    knowledge._form.cache_clear()  # as in a fresh process
    start = time.perf_counter()
    kb = KnowledgeBase.load(path)
    return kb, time.perf_counter() - start


def latency(kb: KnowledgeBase, messages: list[str]) -> tuple[float, float]:
    spent = []
    for text in messages:
        start = time.perf_counter_ns()
        kb.answer(text)
        spent.append((time.perf_counter_ns() - start) / 1e6)
    q = statistics.quantiles(spent, n=100)
    return q[49], q[98]


def best_scores(kb: KnowledgeBase, messages: list[str]) -> list[tuple[float, str, str]]:
    """(score of the best entry if it is answered at threshold 0, its id, the message) per message:
    ``answer`` at a threshold t answers exactly those with a score ≥ t."""
    out = []
    for text in messages:
        hit = kb.answer(text, threshold=0.0)
        out.append((hit.score, hit.entry.id, text) if hit else (0.0, "", text))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000, help="synthetic entries for the large base")
    parser.add_argument("--show", type=int, default=15, help="board posts answered to print")
    args = parser.parse_args()
    random.seed(1)

    posts = board_posts()
    chat = [q for qs in PARAPHRASES.values() for q in qs] + COMPLAINTS + CHAT_LINES
    timing = chat + (random.sample(posts[0], 1000) + random.sample(posts[1], 1000) if posts else [])
    print(
        f"messages timed: {len(timing)} ({'test lines + 1,000 board titles + 1,000 details' if posts else 'test lines'})"
    )

    shipped, load_s = timed_load(SHIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        big_file = Path(tmp) / "knowledge.yml"
        big_file.write_text(yaml.safe_dump(synthetic(args.entries), allow_unicode=True), encoding="utf-8")
        big, big_load_s = timed_load(big_file)
    for name, kb, seconds in (("shipped", shipped, load_s), ("synthetic", big, big_load_s)):
        phrasings = sum(len(e.phrasings) for e in kb.entries)
        p50, p99 = latency(kb, timing)
        c50, c99 = latency(kb, chat)
        print(
            f"{name:9s} {len(kb.entries):5d} entries ({phrasings:5d} phrasings): load {seconds * 1000:4.0f} ms; "
            f"answer p50 {p50:.3f} ms, p99 {p99:.3f} ms (test lines alone: {c50:.3f} / {c99:.3f} ms)"
        )

    print(
        f"\nthreshold sweep (default {DEFAULT_THRESHOLD}); paraphrases answered with their own entry, "
        "the rest answered at all (false answers)"
    )
    recall_rows = []
    for name, written in (("paraphrases", PARAPHRASES), ("harder paraphrases", HARDER)):
        para = [(q, eid) for eid, qs in written.items() for q in qs]
        scores = [
            (h.score if h and h.entry.id == eid else 0.0)
            for q, eid in para
            for h in [shipped.answer(q, threshold=0.0)]
        ]
        recall_rows.append((name, scores))
    sets: list[tuple[str, list[float]]] = [
        ("complaints", [s for s, _, _ in best_scores(shipped, COMPLAINTS)]),
        ("chat lines", [s for s, _, _ in best_scores(shipped, CHAT_LINES)]),
    ]
    answered: list[tuple[float, str, str]] = []
    if posts:
        for name, texts in (("board titles", posts[0]), ("board details", posts[1])):
            scored = best_scores(shipped, texts)
            sets.append((name, [s for s, _, _ in scored]))
            answered += [(s, eid, f"[{name[6:-1]}] {t}") for s, eid, t in scored if s >= DEFAULT_THRESHOLD]
        big_scored = best_scores(big, posts[0] + posts[1])
        sets.append(("board (synthetic KB)", [s for s, _, _ in big_scored]))
    else:
        print("(../shared/data/messages.csv not found: board posts skipped)")
    header = f"{'':22s}" + "".join(f"{t:>10g}" for t in THRESHOLDS)
    print(header)
    for name, scores in recall_rows:
        print(
            f"{name:22s}"
            + "".join(f"{sum(s >= t for s in scores) / len(scores):>10.1%}" for t in THRESHOLDS)
            + f"   n={len(scores)}"
        )
    for name, scores in sets:
        print(
            f"{name:22s}"
            + "".join(f"{sum(s >= t for s in scores):>10d}" for t in THRESHOLDS)
            + f"   n={len(scores)}"
        )
        if scores:
            print(f"{'':22s}   highest score {max(scores):.3f}")
    if posts:
        print(f"\nboard posts answered at {DEFAULT_THRESHOLD} (shipped entries): {len(answered)}")
        for s, eid, text in sorted(answered, reverse=True)[: args.show]:
            print(f"  {s:.3f} {eid:22s} {text[:70]}")
        big_answered = sorted((x for x in big_scored if x[0] >= DEFAULT_THRESHOLD), reverse=True)
        print(f"board posts answered at {DEFAULT_THRESHOLD} by the synthetic entries: {len(big_answered)}")
        for s, eid, text in big_answered[: args.show]:
            entry = next(e for e in big.entries if e.id == eid)
            print(f"  {s:.3f} {entry.question:24s} {text[:60]}")


if __name__ == "__main__":
    main()
