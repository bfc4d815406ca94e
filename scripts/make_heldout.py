#!/usr/bin/env python3
"""Writes the HELD-OUT corpus tests/data/heldout/*.jsonl (SPEC corpus format).

Generated, with a fixed seed, differently from the dev corpus (scripts/make_corpus.py):
Faker (ko_KR and en_US) supplies names, addresses, phones, e-mails, companies and URLs; the
check-digit identifiers (cards, RRN/FRN, BRN/CRN, IBAN) and secrets come from generators
below, drawn at random in realistic formats; they are slotted into sentence templates of
their own (messenger chats, CRM exports, JSON payloads, CSV rows, SMS, config files, call
transcripts, ...), in Korean and English.

Rules are NOT tuned on this corpus: it measures them. Regenerating with the same seed and
the same Faker version (written with Faker 40.54.0) gives the same files.

Faker data is filtered to be realistic: US numbers are valid NANP (area code and exchange
start with 2-9) and lose Faker's `x123` extensions; Korean numbers have no exchange starting
with 0 or 1; multi-line US addresses are joined with ", ".

Gold conventions are those of make_corpus.py (values only, no honorifics, no `Bearer `),
except that ORGANIZATION IS annotated here (company names come from Faker).

Usage:  .venv/bin/pip install faker && .venv/bin/python scripts/make_heldout.py [--docs 1200]
        [--seed N --out DIR]   (a fresh set, never looked at before, to re-measure after a change)
"""

import argparse
import base64
import json
import os
import random
import re
import string
import sys

from faker import Faker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_corpus import (  # noqa: E402  (check-digit helpers, shared on purpose)
    brn_check_digit,
    crn_check_digit,
    frn_check_digit,
    iban_check_digits,
    iban_ok,
    luhn_check_digit,
    luhn_ok,
    rrn_check_digit,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "heldout")
SEED = 73_190_411

R = random.Random(SEED)
FK = Faker("ko_KR")
FE = Faker("en_US")
FK.seed_instance(SEED)
FE.seed_instance(SEED + 1)

ALNUM = string.ascii_letters + string.digits
UPNUM = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


def rs(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def digits(n):
    return "".join(R.choice(string.digits) for _ in range(n))


# ---------------------------------------------------------------------------------------------
# Value generators: each returns the value as written in the text.
# ---------------------------------------------------------------------------------------------


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    return sep.join(out)


def card():
    kind = R.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb", "unionpay", "visa13"])
    prefix, length = {
        "visa": ("4", 16),
        "visa13": ("4", 13),
        "mc": (str(R.randint(51, 55)), 16),
        "mc2": (str(R.randint(2221, 2720)), 16),
        "amex": (R.choice(["34", "37"]), 15),
        "discover": (R.choice(["6011", "65"]), 16),
        "jcb": (str(R.randint(3528, 3589)), 16),
        "unionpay": ("62", 16),
    }[kind]
    body = prefix + digits(length - len(prefix) - 1)
    num = body + luhn_check_digit(body)
    assert luhn_ok(num)
    if kind == "amex":
        sizes = [4, 6, 5]
    elif length == 16:
        sizes = [4, 4, 4, 4]
    else:
        sizes = [length]
    sep = R.choice([" ", "-", ""]) if len(sizes) > 1 else ""
    return group(num, sizes, sep) if sep else num


def birth(lo=1945, hi=2019):
    y = R.randint(lo, hi)
    m = R.randint(1, 12)
    d = R.randint(1, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31)
    return y, m, d


def rrn(foreigner=False):
    y, m, d = birth()
    if foreigner:
        g = R.choice([5, 6]) if y < 2000 else R.choice([7, 8])
    else:
        g = R.choice([1, 2]) if y < 2000 else R.choice([3, 4])
    d12 = f"{y % 100:02d}{m:02d}{d:02d}{g}" + digits(5)
    check = frn_check_digit(d12) if foreigner else rrn_check_digit(d12)
    num = d12 + check
    return num if R.random() < 0.2 else num[:6] + "-" + num[6:]


def rrn_2020():
    """Issued since Oct 2020: the last six digits are random, no valid check digit."""
    y, m, d = birth(2020, 2023)
    d12 = f"{y % 100:02d}{m:02d}{d:02d}{R.choice([3, 4])}" + digits(5)
    last = str((int(rrn_check_digit(d12)) + R.randint(1, 9)) % 10)
    return d12[:6] + "-" + d12[6:] + last


def brn():
    d9 = str(R.randint(101, 999)) + f"{R.choice([81, 82, 85, 86, 87, 88, 10, 11, 12, 13, 20, 30, 40]):02d}" + digits(4)
    num = d9 + brn_check_digit(d9)
    return f"{num[:3]}-{num[3:5]}-{num[5:]}" if R.random() < 0.85 else num


def crn():
    d12 = R.choice(["110111", "110112", "131111", "134511", "124311", "160111"]) + digits(6)
    num = d12 + crn_check_digit(d12)
    return num[:6] + "-" + num[6:]


IBAN_FORMATS = {
    # country: BBAN layout (n = digits, a = upper letters, c = alphanumeric)
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "NL": "4a10n", "ES": "20n", "IT": "1a10n12c",
    "CH": "5n12c", "BE": "12n", "AT": "16n", "PL": "24n", "SE": "20n", "IE": "4a14n",
    "PT": "21n", "DK": "14n", "NO": "11n", "FI": "14n",
}


def iban():
    cc = R.choice(list(IBAN_FORMATS))
    bban = ""
    for n, kind in re.findall(r"(\d+)([nac])", IBAN_FORMATS[cc]):
        alpha = {"n": string.digits, "a": string.ascii_uppercase, "c": UPNUM}[kind]
        bban += rs(int(n), alpha)
    full = cc + iban_check_digits(cc, bban) + bban
    assert iban_ok(full)
    if R.random() < 0.5:
        return " ".join(full[i:i + 4] for i in range(0, len(full), 4))
    return full


def nanp():
    return f"{R.randint(2, 9)}{digits(2)}", f"{R.randint(2, 9)}{digits(2)}", digits(4)


def phone_us():
    a, b, c = nanp()
    return R.choice([
        f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", f"+1-{a}-{b}-{c}", f"{a}.{b}.{c}",
        f"+1 ({a}) {b}-{c}",
    ])


def phone_faker_us():
    while True:
        p = FE.phone_number().split("x")[0]
        m = re.search(r"(\d{3})\D*(\d{3})\D*(\d{4})$", p)
        if m and m.group(1)[0] in "23456789" and m.group(2)[0] in "23456789":
            return p


def phone_kr_mobile():
    mid = f"{R.randint(2, 9)}{digits(3)}"
    end = digits(4)
    return R.choice([
        f"010-{mid}-{end}", f"010-{mid}-{end}", f"010 {mid} {end}", f"010.{mid}.{end}",
        f"010{mid}{end}", f"+82 10-{mid}-{end}", f"+82-10-{mid}-{end}", f"+8210{mid}{end}",
    ])


def phone_kr_faker():
    while True:
        p = FK.phone_number()
        parts = re.split(r"[- ]", p)
        if len(parts) >= 3 and parts[-2][0] not in "01":
            return p


def phone_kr_land():
    area = R.choice(["02", "031", "032", "033", "041", "042", "051", "052", "053", "054", "055", "061", "062", "063", "064", "070"])
    mid = f"{R.randint(2, 9)}{digits(R.choice([2, 3]))}"
    return R.choice([f"{area}-{mid}-{digits(4)}", f"({area}) {mid}-{digits(4)}", f"{area} {mid} {digits(4)}"])


def phone_intl():
    return R.choice([
        f"+44 20 {R.randint(3, 8)}{digits(3)} {digits(4)}",
        f"+44 7{digits(3)} {digits(6)}",
        f"+81 3-{digits(4)}-{digits(4)}",
        f"+81 90-{digits(4)}-{digits(4)}",
        f"+86 1{R.choice('3589')}{digits(1)} {digits(4)} {digits(4)}",
        f"+49 30 {digits(8)}",
        f"+33 {R.randint(1, 9)} {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"+65 {R.choice('689')}{digits(3)} {digits(4)}",
    ])


def email_en():
    return R.choice([
        FE.email, FE.free_email, FE.company_email,
        lambda: f"{FE.first_name().lower()}.{FE.last_name().lower()}+{R.choice(['billing', 'hr', 'test'])}@{FE.domain_name()}",
        lambda: f"{FE.user_name()}@{R.choice(['mail', 'corp', 'eu'])}.{FE.domain_name()}",
    ])()


def email_ko():
    return R.choice([
        FK.email, FK.free_email,
        lambda: f"{FK.user_name()}@{R.choice(['naver.com', 'daum.net', 'gmail.com', 'kakao.com', 'hanmail.net'])}",
        lambda: f"{FK.user_name()}{R.randint(1, 99)}@{FK.domain_name()}",
    ])()


def ipv4():
    kind = R.random()
    if kind < 0.3:
        return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind < 0.45:
        return f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind < 0.55:
        return f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    return f"{R.randint(11, 223)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def ipv6():
    groups = [f"{R.randint(0, 0xffff):x}" for _ in range(8)]
    groups[0] = R.choice(["2001", "2400", "2a02", "fe80", "2606"])
    if R.random() < 0.5:
        return ":".join(groups)
    left = R.randint(1, 3)
    right = R.randint(1, 6 - left)
    return ":".join(groups[:left]) + "::" + ":".join(groups[8 - right:])


def ip():
    return ipv4() if R.random() < 0.75 else ipv6()


def jwt():
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    head = b64({"alg": R.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    body = b64({"sub": FE.uuid4(), "name": FE.first_name(), "exp": 1_700_000_000 + R.randint(0, 10**8)})
    return f"{head}.{body}.{rs(R.choice([43, 86]), B64URL)}"


def pem():
    kind = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])
    lines = [rs(64, B64) for _ in range(R.randint(3, 8))] + [rs(R.randint(8, 60), B64) + "=="]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"


def secret():
    kind = R.choice([
        "aws", "aws", "ghp", "ghpat", "openai_proj", "openai", "slack", "slack", "jwt", "jwt", "pem",
        "stripe", "google", "anthropic", "gitlab",
    ])
    return kind, {
        "aws": lambda: R.choice(["AKIA", "ASIA"]) + rs(16, UPNUM),
        "ghp": lambda: R.choice(["ghp_", "gho_", "ghs_"]) + rs(36),
        "ghpat": lambda: "github_pat_" + rs(22) + "_" + rs(59),
        "openai_proj": lambda: "sk-proj-" + rs(R.choice([48, 74, 156]), B64URL),
        "openai": lambda: "sk-" + rs(48),
        "slack": lambda: f"xox{R.choice('bpa')}-{digits(12)}-{digits(13)}-{rs(24)}",
        "jwt": jwt,
        "pem": pem,
        "stripe": lambda: f"{R.choice(['sk', 'rk'])}_live_{rs(R.choice([24, 34, 99]))}",
        "google": lambda: "AIza" + rs(35, B64URL),
        "anthropic": lambda: "sk-ant-api03-" + rs(93, B64URL) + "AA",
        "gitlab": lambda: "glpat-" + rs(20, B64URL),
    }[kind]()


def aws_secret():
    return rs(40, ALNUM + "/+")


def password():
    return rs(R.randint(3, 6)) + R.choice("!@#$%^&*") + rs(R.randint(3, 8)) + str(R.randint(0, 99))


def bank_kr():
    return R.choice([
        lambda: f"{digits(6)}-{digits(2)}-{digits(6)}",      # KB
        lambda: f"110-{digits(3)}-{digits(6)}",               # Shinhan
        lambda: f"1002-{digits(3)}-{digits(6)}",              # Woori
        lambda: f"{digits(3)}-{digits(6)}-{digits(5)}",       # Hana
        lambda: f"3{digits(2)}-{digits(4)}-{digits(4)}-{digits(2)}",  # NH
        lambda: f"3333-{digits(2)}-{digits(7)}",              # Kakao
    ])()


def passport_kr():
    return R.choice("MSRGD") + (digits(8) if R.random() < 0.5 else digits(3) + R.choice("ABCDEFGHJK") + digits(4))


def addr_ko():
    return FK.address()


def addr_en():
    return FE.address().replace("\n", ", ")


def url():
    return R.choice([FE.url, FK.url, lambda: FE.url() + FE.uri_path(), lambda: f"https://{FE.domain_name()}/{FE.uri_path()}?id={R.randint(1, 99999)}"])()


# Noise: things that look like numbers of interest and are not.
def noise():
    return R.choice([
        lambda: f"ORD-{R.randint(2019, 2025)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}-{digits(6)}",
        lambda: f"{R.randint(2019, 2025)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}",
        lambda: f"{R.randint(2019, 2025)}.{R.randint(1, 12):02d}.{R.randint(1, 28):02d}",
        lambda: f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
        lambda: f"₩{R.randint(1000, 9999999):,}",
        lambda: f"${R.randint(1, 99999):,}.{digits(2)}",
        lambda: f"v{R.randint(0, 12)}.{R.randint(0, 40)}.{R.randint(0, 200)}",
        lambda: FE.uuid4(),
        lambda: rs(40, HEX),
        lambda: rs(64, HEX),
        lambda: rs(7, HEX),
        lambda: f"{R.randint(1_600_000_000, 1_800_000_000)}",
        lambda: f"#{R.randint(100, 99999)}",
        lambda: f"{R.randint(1, 999)}.{digits(1)}ms",
        lambda: f"{R.randint(100, 999)}-{digits(4)}-{digits(4)}-{digits(2)}",
        lambda: f"INV-{digits(8)}",
        lambda: f"{R.randint(1, 99)}.{R.randint(0, 99)}%",
        lambda: f"{digits(4)} {digits(4)} {digits(4)}",
    ])()


# ---------------------------------------------------------------------------------------------
# Slots and templates
# ---------------------------------------------------------------------------------------------

SLOTS = {
    # name: (label or None, generator)
    "ko_name": ("PERSON", lambda: FK.name()),
    "en_name": ("PERSON", lambda: FE.name()),
    "en_first": ("PERSON", lambda: FE.first_name()),
    "ko_addr": ("LOCATION", addr_ko),
    "en_addr": ("LOCATION", addr_en),
    "ko_city": ("LOCATION", lambda: FK.city()),
    "en_city": ("LOCATION", lambda: FE.city()),
    "ko_company": ("ORGANIZATION", lambda: FK.company()),
    "en_company": ("ORGANIZATION", lambda: FE.company()),
    "ko_email": ("EMAIL", email_ko),
    "en_email": ("EMAIL", email_en),
    "kr_mobile": ("PHONE", phone_kr_mobile),
    "kr_phone": ("PHONE", phone_kr_faker),
    "kr_land": ("PHONE", phone_kr_land),
    "us_phone": ("PHONE", phone_us),
    "us_phone_f": ("PHONE", phone_faker_us),
    "intl_phone": ("PHONE", phone_intl),
    "card": ("CREDIT_CARD", card),
    "rrn": ("NATIONAL_ID", rrn),
    "rrn20": ("NATIONAL_ID", rrn_2020),
    "frn": ("NATIONAL_ID", lambda: rrn(foreigner=True)),
    "ssn": ("NATIONAL_ID", lambda: f"{R.choice([R.randint(1, 665), R.randint(667, 899)]):03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"),
    "brn": ("BUSINESS_ID", brn),
    "crn": ("BUSINESS_ID", crn),
    "iban": ("IBAN", iban),
    "ip": ("IP_ADDRESS", ip),
    "ipv4": ("IP_ADDRESS", ipv4),
    "secret": ("SECRET", lambda: secret()[1]),
    "aws_key": ("SECRET", lambda: R.choice(["AKIA", "ASIA"]) + rs(16, UPNUM)),
    "aws_secret": ("SECRET", aws_secret),
    "jwt": ("SECRET", jwt),
    "pem": ("SECRET", pem),
    "password": ("SECRET", password),
    "bank_kr": ("BANK_ACCOUNT", bank_kr),
    "passport_kr": ("PASSPORT", passport_kr),
    "url": ("URL", url),
    "n": (None, noise),
    "n2": (None, noise),
    "n3": (None, noise),
    "bank_name": (None, lambda: R.choice(["국민은행", "신한은행", "우리은행", "하나은행", "농협", "카카오뱅크", "기업은행"])),
    "ko_day": (None, lambda: R.choice(["월요일", "화요일", "수요일", "목요일", "금요일"])),
    "en_day": (None, lambda: R.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])),
    "amount": (None, lambda: f"{R.randint(1, 9999) * 100:,}"),
}

KO_TEMPLATES = [
    "{ko_name}님 안녕하세요~ 요청하신 자료 {ko_email}으로 보냈어요. 확인 부탁드려요!",
    "[알림] {ko_name} 고객님, 주문({n})이 {ko_addr}(으)로 출발했습니다. 문의 {kr_land}",
    "고객센터 상담 기록\n- 상담일시: {n}\n- 고객: {ko_name} / {kr_mobile}\n- 내용: 카드({card}) 이중 결제 환불 요청",
    "이름,연락처,이메일,주민번호\n{ko_name},{kr_mobile},{ko_email},{rrn}",
    "| 성명 | 전화 | 사업자번호 |\n|---|---|---|\n| {ko_name} | {kr_phone} | {brn} |",
    "{ko_company} 거래처 등록: 사업자등록번호 {brn}, 담당 {ko_name} 과장({kr_phone}), 주소 {ko_addr}",
    "법인 정보 확인 부탁드립니다. 법인등록번호 {crn} / 사업자 {brn} / 대표전화 {kr_land}",
    "{ko_name} 대리: 서버 {ipv4} 접속이 안 돼요 ㅠ 어제 {n}부터 계속 타임아웃이에요",
    "외국인 직원 {en_name} 씨 외국인등록번호는 {frn} 이고, 비자 만료일은 {n2}입니다.",
    "환불 계좌 {bank_name} {bank_kr} 로 {amount}원 입금 예정입니다 (예금주 {ko_name})",
    "배포 스크립트에 키가 하드코딩돼 있었습니다: {secret}\n즉시 폐기했고 재발급했습니다. 작업자 {ko_name}",
    "{ko_name}님 신분 확인 완료 (주민등록번호 {rrn}, 휴대폰 {kr_mobile}). 가입 처리했습니다.",
    "2021년생 자녀 주민번호 {rrn20} 로 부양가족 등록 요청드립니다 - {ko_name}",
    "해외송금 요청: 수취인 {en_name}, IBAN {iban}, 금액 EUR {amount}, 송금인 {ko_name}",
    "[보안점검] 접근 로그에서 비정상 IP {ip} 확인. 계정 {ko_email} 잠금 처리. 티켓 {n}",
    "설정 파일(.env) 공유 금지!!\nAWS_ACCESS_KEY_ID={aws_key}\nAWS_SECRET_ACCESS_KEY={aws_secret}",
    "출장자 {ko_name} 여권번호 {passport_kr}, 숙소 {en_addr}, 현지 연락처 {intl_phone}",
    "{ko_company} {ko_name} 팀장님께서 견적서를 {ko_email} 로 요청하셨습니다. 금액은 {amount}원, 유효기간 {n}.",
    "회원정보 변경: 이메일 {ko_email} → {ko_email}, 전화 {kr_mobile} → {kr_mobile}",
    "참고 링크: {url} (사내망에서만 열림), 버전 {n}",
    "오늘 {ko_city} 지사 방문. {ko_name} 부장님 명함: {kr_land} / {kr_mobile} / {ko_email}",
    "결제 실패 로그: card={card} amount={amount} reason=한도초과 at {n}",
    "임시 비밀번호는 {password} 입니다. 로그인 후 꼭 변경해 주세요. ({ko_name} 님)",
    "이번 주 {ko_day} 회의에서 {ko_name}, {ko_name} 님이 발표합니다. 자료는 {url}",
    "수신자: {ko_name} ({ko_email})\n참조: {ko_name} ({ko_email})\n제목: {n} 관련 정산 내역",
    "토큰 만료 오류 재현용 JWT: {jwt} (만료시간 {n2})",
    "개인키가 위키에 올라가 있었습니다. 아래 내용 삭제 완료.\n{pem}",
    "{ko_name} 고객님의 법인카드 {card} 분실 신고가 접수되었습니다. 재발급 카드는 {ko_addr}로 배송됩니다.",
    "주문번호 {n}, 주문일 {n2}, 결제금액 ₩{amount}, 배송 메모 없음",
    "빌드 {n} 배포 완료 (커밋 {n2}), 소요 {n3}",
]

EN_TEMPLATES = [
    "Hey {en_first}, can you call {en_name} back at {us_phone}? She asked about invoice {n}.",
    "Customer record\nName: {en_name}\nEmail: {en_email}\nPhone: {us_phone_f}\nAddress: {en_addr}",
    "{{\"user\": \"{en_email}\", \"ip\": \"{ip}\", \"ts\": \"{n}\", \"action\": \"login\"}}",
    "name,email,phone,ssn\n{en_name},{en_email},{us_phone},{ssn}",
    "Please wire EUR {amount} to {en_company}, IBAN {iban}, reference {n}.",
    "Payment failed for {en_name}: card {card} was declined (code 05). Retry scheduled {n}.",
    "<tr><td>{en_name}</td><td>{en_email}</td><td>{intl_phone}</td></tr>",
    "SECURITY: a token was committed to the repo: {secret} — revoke it and rotate. Reported by {en_first}.",
    "export GITHUB_TOKEN={secret}\nexport REGION=us-east-1",
    "Authorization: Bearer {jwt}",
    "db:\n  user: app\n  password: {password}\n  host: {ipv4}\n  port: 5432",
    "Hi {en_first}, meet {en_name} from {en_company}. Reach them at {en_email} or {intl_phone}.",
    "Shipping label: {en_name}, {en_addr}. Tracking {n}, weight 2.4 kg.",
    "Per our call on {en_day}, {en_name} will send the signed NDA to {en_email} by {n}.",
    "Firewall blocked {ip} -> {ipv4}:443 ({n3} hits, rule 77)",
    "Korean supplier {ko_company}, business registration no. {brn}, contact {kr_mobile}.",
    "Her SSN is {ssn} and DOB on file matches. Case {n}.",
    "the leaked key ({secret}) was used from {ip} at {n}",
    "Invoice {n} paid by card ending {n3}; total ${amount}.00. Thanks, {en_company}!",
    "Release notes {n}: fixed crash on login, bumped deps (commit {n2}).",
    "Transfer details — beneficiary {en_name}, IBAN: {iban}, BIC {n3}. Questions: {en_email}",
    "New employee {en_name} (RRN {rrn}) starts Monday; Seoul address {ko_addr}.",
    "private key for the bastion, do NOT share:\n{pem}",
    "AWS creds found in CI logs: key id {aws_key}, secret {aws_secret}",
    "Docs moved to {url} — old link {url} redirects for now.",
    "Call log: {n} | from {us_phone} | to {us_phone_f} | 4m12s",
    "{en_name} updated billing card to {card} (exp {n3}).",
    "OpenAI / Slack / Stripe keys rotated: old {secret}, {secret}, {secret}.",
    "Uptime 99.98% over {n3} days, p95 {n}, error budget left {n2}.",
    "Ping {en_first} on Slack or mail {en_email}; office line {intl_phone}.",
]


SLOT_RE = re.compile(r"\{\{|\}\}|\{([a-z_0-9]+)\}")


def fill(template):
    text, spans, cp = [], [], 0
    pos = 0
    for m in SLOT_RE.finditer(template):
        plain = template[pos:m.start()]
        text.append(plain)
        cp += len(plain)
        pos = m.end()
        if m.group(0) in ("{{", "}}"):
            text.append(m.group(0)[0])
            cp += 1
            continue
        label, gen = SLOTS[m.group(1)]
        value = gen()
        assert value == value.strip() and value, (m.group(1), value)
        if label:
            spans.append({"start": cp, "end": cp + len(value), "label": label})
        text.append(value)
        cp += len(value)
    text.append(template[pos:])
    t = "".join(text)
    return t, spans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=SEED,
                    help="another seed gives a fresh set (the committed one uses the default)")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    R.seed(a.seed)
    FK.seed_instance(a.seed)
    FE.seed_instance(a.seed + 1)
    os.makedirs(a.out, exist_ok=True)
    totals = {}
    files = {"ko": [], "en": []}
    for i in range(a.docs):
        lang = "ko" if i % 2 == 0 else "en"
        templates = KO_TEMPLATES if lang == "ko" else EN_TEMPLATES
        text, spans = fill(R.choice(templates))
        for s in spans:
            totals[s["label"]] = totals.get(s["label"], 0) + 1
        files[lang].append({"id": f"h{lang}-{i:05d}", "text": text, "spans": spans})
    for lang, docs in files.items():
        with open(os.path.join(a.out, f"heldout_{lang}.jsonl"), "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{a.docs} documents in {a.out}", file=sys.stderr)
    for label in sorted(totals):
        print(f"  {label:<15} {totals[label]}", file=sys.stderr)


if __name__ == "__main__":
    main()
