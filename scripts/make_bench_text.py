#!/usr/bin/env python3
"""Writes the throughput text shared by benches/detect.rs and scripts/compare_presidio.py.

About 1 MB (UTF-8) of mixed Korean/English text, one sentence per line: KLUE unlabeled
sentences (../shared/data/ner/ko_klue_unlabeled.txt) interleaved with the texts of the English
NER corpora (../shared/data/ner/en_*.jsonl), and a line with planted PII (e-mail, phones,
cards, RRN, BRN, IBAN, IP, secrets) every ~2 KB. Fixed seed: the file is the same on every run.

Usage: python3 scripts/make_bench_text.py [--bytes 1000000] [--data DIR] [--out target/bench-text.txt]
"""

import argparse
import glob
import json
import os
import random
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_corpus import brn_check_digit, iban_check_digits, luhn_check_digit, rrn_check_digit  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, ".."))


def default_data_dir():
    for cand in [os.path.join(ROOT, "..", "shared", "data", "ner"), "/work/shared/data/ner"]:
        if os.path.isdir(cand):
            return cand
    return "/work/shared/data/ner"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=1_000_000)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench-text.txt"))
    ap.add_argument("--every", type=int, default=2000, help="bytes between planted PII lines")
    a = ap.parse_args()
    R = random.Random(1234)

    with open(os.path.join(a.data, "ko_klue_unlabeled.txt"), encoding="utf-8") as f:
        ko = [l.strip() for l in f if l.strip()]
    en = []
    for path in sorted(glob.glob(os.path.join(a.data, "en_*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                t = json.loads(line)["text"].strip()
                if len(t) > 20:
                    en.append(t.replace("\n", " "))
    R.shuffle(en)

    def d(n):
        return "".join(R.choice(string.digits) for _ in range(n))

    def card():
        body = "4" + d(14)
        n = body + luhn_check_digit(body)
        return " ".join(n[i:i + 4] for i in range(0, 16, 4))

    def rrn():
        d12 = f"{R.randint(50, 99)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}{R.choice('12')}" + d(5)
        return d12[:6] + "-" + d12[6:] + rrn_check_digit(d12)

    def brn():
        d9 = str(R.randint(101, 999)) + "81" + d(4)
        n = d9 + brn_check_digit(d9)
        return f"{n[:3]}-{n[3:5]}-{n[5:]}"

    def iban():
        bban = d(18)
        return "DE" + iban_check_digits("DE", bban) + bban

    alnum = string.ascii_letters + string.digits
    planted = [
        lambda: f"담당자 메일 kim{R.randint(1, 999)}@example.co.kr 로 회신 바랍니다.",
        lambda: f"Contact j.doe{R.randint(1, 999)}@example.com or call +1 415-555-{d(4)}.",
        lambda: f"고객 연락처 010-{R.randint(2, 9)}{d(3)}-{d(4)} 로 안내했습니다.",
        lambda: f"카드번호 {card()} 로 결제되었습니다.",
        lambda: f"주민등록번호 {rrn()} 확인 완료.",
        lambda: f"사업자등록번호 {brn()} 거래처 등록.",
        lambda: f"Please wire the amount to IBAN {iban()} by Friday.",
        lambda: f"서버 10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)} 에서 오류 발생.",
        lambda: f"leaked key AKIA{''.join(R.choice(string.ascii_uppercase + string.digits) for _ in range(16))} in CI logs",
        lambda: f"token ghp_{''.join(R.choice(alnum) for _ in range(36))} was revoked.",
    ]

    out, size, since, ki, ei, nplant = [], 0, 0, 0, 0, 0
    while size < a.bytes:
        if since >= a.every:
            line = R.choice(planted)()
            since = 0
            nplant += 1
        elif (ki + ei) % 2 == 0:
            line = ko[ki % len(ko)]
            ki += 1
        else:
            line = en[ei % len(en)]
            ei += 1
        n = len(line.encode("utf-8")) + 1
        out.append(line)
        size += n
        since += n
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {a.out}: {size} bytes, {len(out)} lines ({ki} ko, {ei} en, {nplant} with planted PII)", file=sys.stderr)


if __name__ == "__main__":
    main()
