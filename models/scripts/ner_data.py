"""Splits the NER corpora into training and held-out parts, and writes synthetic business text.

What: reads ../shared/data/ner/*.jsonl (SPEC span format, code-point offsets), keeps the labels
the NER models serve (PERSON, LOCATION, ORGANIZATION; DATE is left to the rules), and with a
fixed seed sets aside a held-out part of EVERY source file (20 % of KLUE, 15 % of each English
set). The held-out parts go to tests/data/ner/{ko,en}_heldout.jsonl and are never trained on;
the training parts go to models/build/data/. It also writes synthetic business sentences
(e-mails, chat, tickets, HR forms, meeting notes) in Korean and English with Faker (ko_KR,
en_US, en_GB), with exact spans for names, places and organisations.

Why: the models are judged on sentences they never saw; the synthetic text puts names where
garim meets them (business prose), which the public corpora (news, tweets, wiki) lack.

Limits: the synthetic templates are hand-written and few (about 60 per language); they teach
formats and cues, not world knowledge.

Usage: python3 models/scripts/ner_data.py [--data ../shared/data/ner] (from the repo root)
"""

import argparse
import json
import random
from pathlib import Path

SEED = 20261123
KEEP = {"PERSON", "LOCATION", "ORGANIZATION"}
ROOT = Path(__file__).resolve().parents[2]


def load(path):
    docs = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        spans = [s for s in d["spans"] if s["label"] in KEEP]
        docs.append({"id": d.get("id"), "text": d["text"], "spans": spans})
    return docs


def split(docs, frac, rng):
    idx = list(range(len(docs)))
    rng.shuffle(idx)
    k = int(round(len(docs) * frac))
    held = sorted(idx[:k])
    train = sorted(idx[k:])
    return [docs[i] for i in train], [docs[i] for i in held]


def write(path, docs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


# --- synthetic text -----------------------------------------------------------------------

class Builder:
    """Builds one sentence from pieces, recording code-point spans."""

    def __init__(self):
        self.parts = []
        self.spans = []
        self.pos = 0

    def lit(self, s):
        self.parts.append(s)
        self.pos += len(s)

    def ent(self, s, label):
        self.spans.append({"start": self.pos, "end": self.pos + len(s), "label": label})
        self.lit(s)

    def doc(self, id_):
        return {"id": id_, "text": "".join(self.parts), "spans": self.spans}


def render(template, values):
    """`template` has {slot} markers; values[slot] = (text, label or None)."""
    b = Builder()
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            b.lit(template[i:])
            break
        b.lit(template[i:j])
        k = template.index("}", j)
        text, label = values[template[j + 1:k]]
        if label:
            b.ent(text, label)
        else:
            b.lit(text)
        i = k + 1
    return b


KO_TEMPLATES = [
    "{p} {title}님께 전달 부탁드립니다.",
    "{p} {title}님, 내일 회의 자료 확인 부탁드립니다.",
    "안녕하세요, {org} {dept} {p} {title}입니다.",
    "{org} {p} {title}께서 {city} 지사로 발령되었습니다.",
    "담당자: {p} ({org} {dept})",
    "{p}씨가 오늘 오후 {city}에서 미팅이 있다고 합니다.",
    "고객명: {p} / 주소: {addr}",
    "{p} 고객님의 문의 건은 {org} 고객센터로 이관되었습니다.",
    "참석자: {p}, {p2}, {p3}",
    "{p} 팀장과 {p2} 대리가 {org} 본사를 방문할 예정입니다.",
    "{p}님이 {city}로 출장 중이라 회신이 늦어질 수 있습니다.",
    "수신: {org} {dept} {p} {title}님\n참조: {p2} {title2}님",
    "{p} 교수는 {org}과 공동 연구를 진행하고 있다.",
    "어제 {p} 사원이 제출한 보고서를 {p2} 과장님이 검토하셨습니다.",
    "성명 {p}, 소속 {org}, 근무지 {city}",
    "{p}({age}) 씨는 {city}에 거주하고 있다.",
    "배송지를 {addr}(으)로 변경해 주세요. 받는 분은 {p}입니다.",
    "{org}은 {city}에 새 물류센터를 연다고 밝혔다.",
    "{p} 대표는 {org}의 신규 사업을 발표했다.",
    "회의록 - 일시: 오전 10시, 장소: {city} 본사, 작성자: {p}",
    "{p}에게 {org} 계약서 초안을 보내 주세요.",
    "{p} 님 안녕하세요. {org} 채용 담당 {p2}입니다.",
    "인사발령: {p} {title} → {dept} ({city})",
    "{p}가 {org}에 입사한 지 벌써 3년이 됐다.",
    "{city} 출신인 {p} 선수는 {org}와 계약했다.",
    "{p} 주임님, {org} 견적서 회신 왔습니다.",
    "문의하신 {org} 제품은 {city} 매장에서 교환 가능합니다.",
    "휴가 신청자 {p} (기간: 3일), 승인자 {p2} {title}",
    "{p}: 이번 주 금요일까지 {org} 건 마무리할게요",
    "{p} 님이 채널에 {p2} 님을 초대했습니다.",
]

EN_TEMPLATES = [
    "Please forward this to {p} at {org} in {city}.",
    "Hi {first}, could you send the Q3 numbers to {p2} before Friday?",
    "{p} from {org} called about the invoice.",
    "Meeting notes: {p}, {p2} and {p3} attended; next review in {city}.",
    "Customer: {p}, Address: {addr}",
    "Dear {title} {last}, thank you for contacting {org} support.",
    "Ticket #4821 opened by {p} ({org}): login fails since Monday.",
    "{p} will join {org} as head of sales in {city}.",
    "Can you loop in {first} from legal? {p2} is out until Tuesday.",
    "Employee name: {p}\nDepartment: {dept}\nOffice: {city}",
    "{p} moved from {city} to {city2} last year.",
    "Thanks {first}! I'll ask {p2} to update the {org} contract.",
    "Ship to {p}, {addr}.",
    "{org} opened a new office in {city}, led by {p}.",
    "Per {p}'s request, the {org} account has been closed.",
    "Regards,\n{p}\n{job}, {org}",
    "@{first} did {p2} approve the budget?",
    "Interview scheduled with {p} on Thursday at our {city} office.",
    "{p} and {p2} are presenting at the {org} offsite in {city}.",
    "The shipment from {org} to {city} was delayed, according to {p}.",
    "Reminder: {p}'s farewell lunch is at noon.",
    "Escalated to {p} ({job}) at {org}.",
    "{first} said {org} wants the draft by EOD.",
    "Visitor log: {p}, company {org}, host {p2}",
    "I met {p} in {city} and she introduced me to people from {org}.",
    "Please update the billing address for {p} to {addr}.",
    "{org} CEO {p} said the deal would close in {city}.",
    "ok so {first} is coming to {city} next week, can u book a room",
]

KO_DEPTS = ["영업팀", "인사팀", "재무팀", "개발팀", "마케팅팀", "법무팀", "구매팀", "기획실", "고객지원팀", "품질관리팀"]
KO_TITLES = ["과장", "대리", "팀장", "부장", "차장", "사원", "주임", "이사", "실장", "본부장", "선임", "책임"]
EN_DEPTS = ["Sales", "Finance", "Engineering", "Legal", "Marketing", "HR", "Procurement", "Support"]
EN_TITLES = ["Mr.", "Ms.", "Mrs.", "Dr."]


def ko_values(fk, rng):
    name = lambda: fk.name()
    city = rng.choice([fk.city(), fk.metropolitan_city(), fk.province()])
    return {
        "p": (name(), "PERSON"), "p2": (name(), "PERSON"), "p3": (name(), "PERSON"),
        "title": (rng.choice(KO_TITLES), None), "title2": (rng.choice(KO_TITLES), None),
        "org": (fk.company(), "ORGANIZATION"), "dept": (rng.choice(KO_DEPTS), None),
        "city": (city, "LOCATION"), "addr": (fk.address(), "LOCATION"),
        "age": (str(rng.randint(20, 70)), None),
    }


def en_values(fk, rng):
    p = fk.name()
    first, last = fk.first_name(), fk.last_name()
    return {
        "p": (p, "PERSON"), "p2": (fk.name(), "PERSON"), "p3": (fk.name(), "PERSON"),
        "first": (first, "PERSON"), "last": (last, "PERSON"),
        "title": (rng.choice(EN_TITLES), None),
        "org": (fk.company(), "ORGANIZATION"), "dept": (rng.choice(EN_DEPTS), None),
        "city": (fk.city(), "LOCATION"), "city2": (fk.city(), "LOCATION"),
        "addr": (fk.address().replace("\n", ", "), "LOCATION"),
        "job": (fk.job(), None),
    }


def synth(lang, n, rng):
    from faker import Faker

    if lang == "ko":
        fk = Faker("ko_KR")
        templates, values = KO_TEMPLATES, ko_values
    else:
        fk = Faker(["en_US", "en_GB"])
        templates, values = EN_TEMPLATES, en_values
    fk.seed_instance(SEED)
    docs = []
    for i in range(n):
        t = rng.choice(templates)
        v = values(fk, rng)
        docs.append(render(t, v).doc(f"synth-{lang}-{i}"))
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/ner"))
    ap.add_argument("--out", default=str(ROOT / "models/build/data"))
    ap.add_argument("--synth-ko", type=int, default=4000)
    ap.add_argument("--synth-en", type=int, default=4000)
    a = ap.parse_args()
    data, out = Path(a.data), Path(a.out)
    rng = random.Random(SEED)

    ko_train, ko_held = split(load(data / "ko_klue_train.jsonl"), 0.20, rng)
    write(ROOT / "tests/data/ner/ko_heldout.jsonl", ko_held)
    write(out / "ko_train.jsonl", ko_train)

    en_train, en_held = [], []
    for name in ["en_wnut17_train", "en_wnut17_dev", "en_btc", "en_wikigold", "en_sec_fin5", "en_uner_ewt_dev"]:
        tr, he = split(load(data / f"{name}.jsonl"), 0.15, rng)
        en_train += tr
        en_held += he
    write(ROOT / "tests/data/ner/en_heldout.jsonl", en_held)
    write(out / "en_train.jsonl", en_train)

    write(out / "ko_synth.jsonl", synth("ko", a.synth_ko, random.Random(SEED + 1)))
    write(out / "en_synth.jsonl", synth("en", a.synth_en, random.Random(SEED + 2)))
    print(f"ko: train {len(ko_train)} held-out {len(ko_held)}; en: train {len(en_train)} held-out {len(en_held)}")


if __name__ == "__main__":
    main()
