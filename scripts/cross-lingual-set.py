#!/usr/bin/env python3
"""Writes a cross-lingual evaluation set for `verity eval squad`: the English SQuAD articles,
asked with the Spanish questions of SQuAD-es (a translation of the same SQuAD 2.0 questions,
matched by question id), scored with the English gold answers.

    scripts/cross-lingual-set.py ../shared/data/squad/dev.json ../shared/data/squad-es/dev.json OUT.json
    verity eval squad OUT.json --mode all

Only articles with at least one matched question are kept; unanswerable questions keep their
flag (their abstention rate is reported as usual)."""
import json
import sys

english_file, spanish_file, out_file = sys.argv[1:4]
english = json.load(open(english_file, encoding="utf-8"))["data"]
spanish = json.load(open(spanish_file, encoding="utf-8"))["data"]
spanish_questions = {
    q["id"]: q["question"]
    for article in spanish
    for paragraph in article["paragraphs"]
    for q in paragraph["qas"]
    if "id" in q
}
articles, asked = [], 0
for article in english:
    paragraphs = []
    for paragraph in article["paragraphs"]:
        qas = [
            dict(q, question=spanish_questions[q["id"]])
            for q in paragraph["qas"]
            if q.get("id") in spanish_questions
        ]
        asked += len(qas)
        # Every paragraph stays (the documents are whole); only matched questions are asked.
        paragraphs.append({"context": paragraph["context"], "qas": qas})
    if any(p["qas"] for p in paragraphs):
        articles.append({"title": article["title"], "paragraphs": paragraphs})
json.dump({"version": "v2.0", "data": articles}, open(out_file, "w", encoding="utf-8"), ensure_ascii=False)
print(f"{len(articles)} English articles, {asked} Spanish questions -> {out_file}", file=sys.stderr)
