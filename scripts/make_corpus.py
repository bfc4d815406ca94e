#!/usr/bin/env python3
"""Writes the DEV corpus tests/data/corpus/*.jsonl from hand-written documents.

Every document below is written with its PII marked inline as ⟦LABEL:value⟧; this script
removes the marks and emits {"id", "text", "spans"} with code-point offsets (SPEC.md corpus
format), so the offsets are correct by construction.

Check digits are computed here, never typed: a mark ⟦LABEL/kind:value⟧ replaces the `?`s of
value with the check digit(s) of `kind`:
  luhn  credit cards (last digit)          rrn   Korean resident registration number
  frn   Korean foreigner registration no.  brn   Korean business registration number
  crn   Korean corporate registration no.  iban  IBAN (the two `??` after the country)
  bad   a digit that makes the number FAIL its check (for negatives: kind "bad-luhn", ...)
Secrets are drawn from a seeded generator (tok()) so reruns write byte-identical files.

Conventions for the gold spans:
  * PHONE includes a leading +CC and an area code in parentheses; EMAIL the address only;
    URL the whole URL without trailing punctuation; IP_ADDRESS without a port.
  * SECRET is the credential value only (not `Bearer `, not `password=`); a PEM block from
    -----BEGIN to the END line inclusive; a database connection string with an embedded
    password as a whole.
  * BANK_ACCOUNT, PASSPORT, DRIVER_LICENSE: the number only, not the bank name or words.
  * PERSON: the name without honorifics (김민수 님 -> 김민수); LOCATION: street addresses,
    cities and countries; DATE: dates tied to a person (birth dates) only.
  * ORGANIZATION is NOT annotated in this corpus: ignore ORGANIZATION scores on it.

Usage: python3 scripts/make_corpus.py   (writes tests/data/corpus/, prints a summary)
"""

import json
import os
import random
import re
import string
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "corpus")

LABELS = {
    "PERSON", "LOCATION", "ORGANIZATION", "DATE", "AGE", "EMAIL", "PHONE", "URL", "IP_ADDRESS",
    "CREDIT_CARD", "IBAN", "BANK_ACCOUNT", "NATIONAL_ID", "BUSINESS_ID", "PASSPORT",
    "DRIVER_LICENSE", "ZIP_CODE", "SECRET", "CUSTOM",
}

# ---------------------------------------------------------------------------------------------
# Check digits
# ---------------------------------------------------------------------------------------------


def luhn_check_digit(digits):
    """Check digit to append to `digits` (a string of digits) so the whole passes Luhn."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number):
    ds = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


RRN_W = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]


def rrn_check_digit(d12):
    s = sum(w * int(c) for w, c in zip(RRN_W, d12))
    return str((11 - s % 11) % 10)


def frn_check_digit(d12):
    # Foreigner registration numbers (before Oct 2020): (13 - Σ mod 11) mod 10.
    s = sum(w * int(c) for w, c in zip(RRN_W, d12))
    return str((13 - s % 11) % 10)


def brn_check_digit(d9):
    w = [1, 3, 7, 1, 3, 7, 1, 3, 5]
    s = sum(a * int(c) for a, c in zip(w, d9))
    s += int(d9[8]) * 5 // 10
    return str((10 - s % 10) % 10)


def crn_check_digit(d12):
    s = sum((1 if i % 2 == 0 else 2) * int(c) for i, c in enumerate(d12))
    return str((10 - s % 10) % 10)


def iban_value(s):
    return int("".join(str(int(c, 36)) for c in s))


def iban_check_digits(country, bban):
    n = iban_value(bban + country + "00")
    return "%02d" % (98 - n % 97)


def iban_ok(iban):
    c = iban.replace(" ", "")
    return iban_value(c[4:] + c[:4]) % 97 == 1


def rrn_ok(v):
    d = v.replace("-", "")
    return rrn_check_digit(d[:12]) == d[12]


def brn_ok(v):
    d = v.replace("-", "")
    return brn_check_digit(d[:9]) == d[9]


def fill_last(value, fn):
    """Replaces the single `?` of value by fn(digits before it)."""
    assert value.count("?") == 1, value
    before = "".join(c for c in value.split("?")[0] if c.isdigit())
    return value.replace("?", fn(before))


def complete(kind, value):
    bad = kind.startswith("bad-")
    base = kind[4:] if bad else kind
    if base == "iban":
        assert value[2:4] == "??", value
        bban = value[4:].replace(" ", "")
        out = value[:2] + iban_check_digits(value[:2], bban) + value[4:]
        assert iban_ok(out)
        if bad:
            cd = int(out[2:4])
            out = out[:2] + "%02d" % ((cd + 1) % 100) + out[4:]
            assert not iban_ok(out)
        return out
    fn = {
        "luhn": luhn_check_digit,
        "rrn": rrn_check_digit,
        "frn": frn_check_digit,
        "brn": brn_check_digit,
        "crn": crn_check_digit,
    }[base]
    if bad:
        # Any digit but the right one.
        return fill_last(value, lambda ds: str((int(fn(ds)) + 3) % 10))
    out = fill_last(value, fn)
    if base == "luhn":
        assert luhn_ok(out), out
    if base == "rrn":
        assert rrn_ok(out), out
    if base == "brn":
        assert brn_ok(out), out
    return out


# ---------------------------------------------------------------------------------------------
# Seeded secret material
# ---------------------------------------------------------------------------------------------

_rng = random.Random(20240611)
ALNUM = string.ascii_letters + string.digits
UPPER_NUM = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
B64 = ALNUM + "+/"


def tok(n, alphabet=ALNUM):
    return "".join(_rng.choice(alphabet) for _ in range(n))


def jwt():
    import base64

    def b64(obj):
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64({"sub": str(_rng.randint(10000, 99999)), "iat": 1718000000 + _rng.randint(0, 10**6)})
    return f"{head}.{body}.{tok(43, B64URL)}"


def pem(kind="RSA PRIVATE KEY", lines=4):
    body = "\n".join(tok(64, B64) for _ in range(lines - 1)) + "\n" + tok(24, B64) + "=="
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


# ---------------------------------------------------------------------------------------------
# Markup
# ---------------------------------------------------------------------------------------------

MARK = re.compile(r"⟦([A-Z_]+)(?:/([a-z-]+))?:(.*?)⟧", re.S)


def render(marked):
    """Returns (text, spans) for a marked document."""
    out, spans, pos, cp = [], [], 0, 0
    for m in MARK.finditer(marked):
        plain = marked[pos:m.start()]
        assert "⟦" not in plain and "⟧" not in plain, marked[:80]
        out.append(plain)
        cp += len(plain)
        label, kind, value = m.group(1), m.group(2), m.group(3)
        assert label in LABELS, label
        if kind:
            value = complete(kind, value)
        assert "?" not in value or label in ("URL", "SECRET"), value
        assert value and value == value.strip(), repr(value)
        out.append(value)
        spans.append({"start": cp, "end": cp + len(value), "label": label})
        cp += len(value)
        pos = m.end()
    rest = marked[pos:]
    assert "⟦" not in rest and "⟧" not in rest, rest[:80]
    out.append(rest)
    text = "".join(out)
    for s in spans:
        assert text[s["start"]:s["end"]].strip() == text[s["start"]:s["end"]]
    return text, spans


def neg_bad(kind, value):
    """A number shaped like PII whose check digit is wrong (unlabelled negative)."""
    return complete("bad-" + kind, value)


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------

EMAILS = [
    # Korean business e-mails
    """제목: 3월 급여 이체 계좌 변경 요청
수신: 인사팀 ⟦PERSON:박지현⟧ 대리님
안녕하세요, 재무팀 ⟦PERSON:이동욱⟧입니다. 급여 계좌를 변경하고자 합니다.
변경 계좌: 신한은행 ⟦BANK_ACCOUNT:110-432-876512⟧ (예금주 ⟦PERSON:이동욱⟧)
확인 후 회신은 ⟦EMAIL:dw.lee@hanbit-logis.co.kr⟧ 로 부탁드립니다.
연락처: ⟦PHONE:010-4821-7730⟧""",
    """⟦PERSON:김서연⟧ 님께,
요청하신 견적서를 첨부합니다. 사업자등록번호는 ⟦BUSINESS_ID/brn:214-86-1234?⟧ 이며,
세금계산서는 ⟦EMAIL:tax@daon-soft.kr⟧ 으로 발행해 주시면 됩니다.
문의: 영업1팀 ⟦PERSON:최민호⟧ 과장 (⟦PHONE:02-3481-5520⟧, 내선 204)
감사합니다.""",
    """From: ⟦EMAIL:sarah.connor@northwind-traders.com⟧
To: ⟦EMAIL:procurement@hanbit-logis.co.kr⟧
Subject: Wire transfer details for PO-2024-0087

Hi ⟦PERSON:Jaeho⟧,

Please use the following account for the April invoice:
IBAN: ⟦IBAN/iban:DE?? 3704 0044 0532 0130 00⟧
BIC: COBADEFFXXX
Amount: EUR 12,480.00 (invoice INV-2024-0412)

If anything is unclear call me at ⟦PHONE:+49 30 901820⟧ or my mobile ⟦PHONE:+49 151 2345 6789⟧.

Best regards,
⟦PERSON:Sarah Connor⟧""",
    """Subject: Re: onboarding – laptop and accounts
Hi ⟦PERSON:Tom⟧, welcome aboard! Your temporary VPN password is ⟦SECRET:Vq7#pL2m!xR9⟧ (you will be asked to change it).
The wiki is at ⟦URL:https://wiki.northwind-traders.com/onboarding/it⟧ and the help desk is ⟦EMAIL:helpdesk@northwind-traders.com⟧.
Your badge will be ready on 2024-04-02 at the front desk. Ticket ref: HD-58213.""",
    """안녕하세요 ⟦PERSON:정유진⟧ 고객님,
주문하신 상품(주문번호 20240315-000482)이 출고되었습니다. 배송지: ⟦LOCATION:서울특별시 마포구 월드컵북로 396, 12층 1203호⟧
배송 조회는 ⟦URL:https://www.cjlogistics.com/ko/tool/parcel/tracking⟧ 에서 운송장번호 6301-2245-8812 로 확인 가능합니다.
결제 금액 ₩128,400 (카드 일시불)""",
    """Dear Ms. ⟦PERSON:Park⟧,
Thank you for your application for the Senior Data Engineer position (req. #2024-DE-117).
We would like to invite you to an interview on May 14 at 10:30 KST. The video link is
⟦URL:https://meet.example-hr.com/j/84213377⟧ (passcode 551902).
Please confirm by replying to ⟦EMAIL:recruiting@daon-soft.kr⟧.""",
    """제목: [긴급] 법인카드 분실 신고
법인카드 ⟦CREDIT_CARD/luhn:5412-7534-9821-007?⟧ 를 어제 분실했습니다. 즉시 정지 부탁드립니다.
카드 소지자: 경영지원팀 ⟦PERSON:한상우⟧ 부장, 휴대폰 ⟦PHONE:010-9012-3344⟧
마지막 사용: 3/14 18:42, 23,000원 (식대)""",
    """Hello team,
the staging DB moved. New connection string: ⟦SECRET:postgresql://app_rw:Xk29fP0qLm77@db-staging.internal:5432/orders⟧
Do NOT paste it in Slack. Host IP is ⟦IP_ADDRESS:10.42.8.17⟧, failover ⟦IP_ADDRESS:10.42.8.18⟧.
Maintenance window: Sat 02:00-04:00 UTC. – ⟦PERSON:Priya⟧""",
    """⟦PERSON:오세훈⟧ 팀장님, 해외 출장 관련 정보 전달드립니다.
여권번호: ⟦PASSPORT:M70689098⟧ / 만료일 2029.08.11
항공권 예약번호: KE-7Q3XZP, 호텔 예약 확인번호 88124567
출장지: ⟦LOCATION:싱가포르⟧ (4/22~4/26)""",
    """Hi ⟦PERSON:Minji⟧,
quick reminder that the customer ⟦PERSON:Robert Hayes⟧ (⟦EMAIL:rhayes@brightpath.io⟧, ⟦PHONE:(415) 555-0134⟧) wants a callback about contract C-2291.
He prefers afternoons Pacific time. Thanks!""",
    """제목: 외국인 근로자 4대보험 신고 서류
⟦PERSON:응우옌 반 안⟧ 님 외국인등록번호 ⟦NATIONAL_ID/frn:880412-512345?⟧, 입사일 2024-03-04.
⟦PERSON:Maria Santos⟧ 님 외국인등록번호 ⟦NATIONAL_ID/frn:910923-612210?⟧.
두 분 모두 급여 계좌는 우리은행입니다: ⟦BANK_ACCOUNT:1002-453-129874⟧, ⟦BANK_ACCOUNT:1002-771-604215⟧""",
    """Subject: Your refund has been processed
Dear customer, we refunded USD 89.90 to the card ending in 4242 on 2024-03-18.
Transaction id: txn_3OsdK2L8x9, reference 7730-1142. Questions: ⟦EMAIL:billing@brightpath.io⟧ or ⟦PHONE:+1 212-555-0187⟧.""",
    """수신: 전 직원
사내 메신저 봇 토큰이 유출되어 폐기했습니다. 폐기된 토큰: ⟦SECRET:xoxb-{t1}-{t2}-{t3}⟧
앞으로 토큰은 Vault(⟦URL:https://vault.corp.daon-soft.kr/ui/⟧)에서만 관리해 주세요.
보안팀 ⟦PERSON:윤태호⟧ (⟦PHONE:070-4012-8831⟧)""".format(t1=tok(12, string.digits), t2=tok(13, string.digits), t3=tok(24)),
    """Hi ⟦PERSON:Daniel⟧, the UK supplier's details:
Account name: Brightwater Ltd, IBAN ⟦IBAN/iban:GB??NWBK60161331926819⟧, sort code 60-16-13.
Office: ⟦LOCATION:14 Wharf Road, London N1 7GR⟧, tel ⟦PHONE:+44 20 7946 0321⟧.""",
    """제목: 신규 거래처 등록 요청
상호: (주)다온소프트 / 대표자 ⟦PERSON:강지훈⟧
사업자등록번호: ⟦BUSINESS_ID/brn:105-87-5432?⟧
법인등록번호: ⟦BUSINESS_ID/crn:110111-642893?⟧
주소: ⟦LOCATION:경기도 성남시 분당구 판교역로 235, 에이치스퀘어 N동 7층⟧
담당자 메일: ⟦EMAIL:partner@daon-soft.kr⟧""",
    """Subject: Security alert – key rotation
The AWS access key ⟦SECRET:AKIA{a}⟧ was found in a public gist and has been disabled.
Its secret ⟦SECRET:{s}⟧ must be treated as compromised.
Rotation ticket SEC-4471. Owner: ⟦PERSON:Kevin Brooks⟧.""".format(a=tok(16, UPPER_NUM), s=tok(40, ALNUM + "/+")),
    """⟦PERSON:조아라⟧ 님, 3월 세미나 참가비 환불 건입니다.
환불 계좌: 카카오뱅크 ⟦BANK_ACCOUNT:3333-02-5871204⟧
환불액: 55,000원 / 처리 예정일: 3월 29일
문의: 교육사업부 ⟦PHONE:02-6952-1140⟧""",
    """From: noreply@statuspage.example.com
Subject: [Resolved] Elevated API error rates
Between 09:12 and 09:47 UTC the API returned 5xx for 2.3% of requests (incident INC-20240321-02).
No customer data was affected. Root cause: a bad deploy (build 4.18.2-rc3).""".replace(
        "noreply@statuspage.example.com", "⟦EMAIL:noreply@statuspage.example.com⟧"),
]

CHATS = [
    "[10:02] ⟦PERSON:민수⟧: 팀장님 고객 번호 남겨드릴게요 ⟦PHONE:010-2231-9087⟧\n[10:03] ⟦PERSON:지은⟧: 넵 확인했어요 👍",
    "[09:41] kevin: anyone have the staging admin pw?\n[09:42] ana: it's ⟦SECRET:St@ging2024!⟧ but please rotate after the demo\n[09:42] kevin: thx",
    "ㅋㅋ 오늘 점심 12시 반에 2층 식당 ㄱㄱ? 회의는 3시로 밀렸대요",
    "[14:15] ⟦PERSON:Hyejin⟧: can you ping the server ⟦IP_ADDRESS:192.168.10.24⟧? it stopped answering after the 14:00 patch\n[14:16] ops-bot: host unreachable (3/3 probes lost)",
    "배송 기사님 연락처 ⟦PHONE:010 7781 2290⟧ 이고요, 주소는 ⟦LOCATION:부산광역시 해운대구 센텀중앙로 79⟧ 입니다",
    "@channel 새 깃허브 토큰 발급했어요 ⟦SECRET:ghp_{g}⟧ 일단 여기 붙여놓고 나중에 지울게요".format(g=tok(36)),
    "[16:20] ⟦PERSON:Olivia⟧: client's card got declined, number she gave was ⟦CREDIT_CARD/luhn:4556 7375 8689 989?⟧ exp 09/27\n[16:21] ⟦PERSON:Ben⟧: don't paste card numbers here!!",
    "내일 워크숍 장소 변경: ⟦LOCATION:대전광역시 유성구 대학로 99⟧ 대회의실 / 9시 30분 집합 / 준비물 노트북",
    "ok merged #4821, CI green (1,204 tests, 7m12s). release tag v3.14.0 goes out tomorrow",
    "혹시 ⟦PERSON:최지우⟧ 대리 메일 주소 아시는 분? ⟦EMAIL:jiwoo.choi@hanbit-logis.co.kr⟧ 맞나요?",
    "[11:11] bot: deploy of api@9f2c1ab to prod-eu finished in 84s (p95 212ms)",
    "quick q: is our office number still ⟦PHONE:+82 2-2038-7700⟧ or did it change after the move?",
    "@⟦PERSON:도현⟧ 님 VPN 접속 안 되면 게이트웨이 ⟦IP_ADDRESS:203.0.113.45⟧ 로 직접 붙어보세요. 포트는 443",
    "thanks ⟦PERSON:Mark⟧! btw the OpenAI key in the notebook is ⟦SECRET:sk-proj-{k}⟧, revoke it when you're done".format(k=tok(48, B64URL)),
    "회의록 올렸습니다 → ⟦URL:https://docs.google.com/document/d/1xA9fP2kLmN0qRsT/edit⟧",
    "order #88213 shipped, tracking 1Z999AA10123456784, ETA Thu",
    "고객님 성함 ⟦PERSON:박성민⟧, 생년월일 ⟦DATE:1987년 5월 3일⟧, 연락처 ⟦PHONE:010-3345-0192⟧ 로 접수했습니다",
    "[13:05] ⟦PERSON:Lucas⟧: the JWT from the mobile app logs: ⟦SECRET:{j}⟧ — expired already?".format(j=jwt()),
    "주민번호 뒷자리는 채팅으로 보내지 마세요!! 서류로만 받습니다",
    "[08:58] ⟦PERSON:Sophie⟧: running late, train stuck near ⟦LOCATION:Reading⟧. call me on ⟦PHONE:+44 7700 900461⟧ if urgent",
    "사내 위키 링크 공유드려요 ⟦URL:https://wiki.daon-soft.kr/pages/viewpage.action?pageId=48213⟧ 비번은 따로 DM",
]

TICKETS = [
    """[Ticket #CS-20240318-0091] 결제 오류
고객명: ⟦PERSON:이하늘⟧ / 연락처: ⟦PHONE:010-5567-2201⟧ / 이메일: ⟦EMAIL:haneul.lee@naver.com⟧
내용: 카드 ⟦CREDIT_CARD/luhn:9410-6123-4567-890?⟧ 로 결제 시 '승인 거절(코드 51)' 발생. 3회 시도.
처리: PG사 문의 중 (담당 ⟦PERSON:김도윤⟧)""",
    """Ticket: SUP-77120
Priority: P2
Customer: ⟦PERSON:James O'Neill⟧ <⟦EMAIL:james.oneill@fastmail.com⟧>
Issue: cannot log in after password reset. User agent Chrome/123.0.6312.86, IP ⟦IP_ADDRESS:198.51.100.77⟧.
Steps tried: cleared cache, reset again at 2024-03-20T08:14:09Z.""",
    """[VOC] 배송지 변경 요청
주문번호: 2024-0320-118842
기존 주소: ⟦LOCATION:인천광역시 연수구 송도과학로 32⟧
변경 주소: ⟦LOCATION:인천광역시 남동구 예술로 152번길 16, 302호⟧
수령인: ⟦PERSON:장민재⟧ (⟦PHONE:010-8893-4410⟧)""",
    """Ticket #4410 — refund request
Customer paid twice with card ⟦CREDIT_CARD/luhn:3782 822463 1000?⟧ (Amex). Order ids 55120 and 55121, USD 249.00 each.
Refund the second charge. Contact: ⟦PHONE:+1 (646) 555-0199⟧.""",
    """[장애 티켓] INC-7781
증상: 결제 API 타임아웃 (p99 8.2s)
영향 서버: ⟦IP_ADDRESS:10.0.12.31⟧, ⟦IP_ADDRESS:10.0.12.32⟧
원인: 커넥션 풀 고갈 (max 200)
조치: 풀 크기 400으로 상향, 재배포 14:22""",
    """Support case 00983412
Subject: account statement request
The customer (⟦PERSON:Ana Ribeiro⟧) asked for statements for IBAN ⟦IBAN/iban:PT??0002 0123 1234 5678 9015 4⟧ from Jan–Mar.
Verified identity by callback to ⟦PHONE:+351 21 342 8810⟧.""",
    """[문의] 세금계산서 재발행
회사명: 주식회사 한빛로지스 / 사업자번호 ⟦BUSINESS_ID/brn:220-81-6278?⟧
담당자: ⟦PERSON:문지호⟧ / ⟦EMAIL:jiho.moon@hanbit-logis.co.kr⟧
요청: 2월분 계산서(공급가액 3,450,000원) 품목 오기재로 재발행 요청""",
    """Ticket #SEC-221: leaked credential in repo
File: deploy/.env (commit 4e1b9c0)
Line 12: STRIPE_SECRET_KEY=⟦SECRET:sk_live_{s}⟧
Line 13: SENTRY_DSN=⟦URL:https://3b8c0f2e@o441122.ingest.sentry.io/5512⟧
Action: key rolled by ⟦PERSON:Erin Walsh⟧ at 11:02.""".format(s=tok(32)),
    """[CS] 회원 탈퇴 후 개인정보 삭제 확인 요청
회원ID: sky_blue88 / 가입 이메일 ⟦EMAIL:skyblue88@daum.net⟧
본인 확인용 휴대폰 ⟦PHONE:010.2219.7788⟧
요청일 2024.03.21, 처리 기한 10영업일""",
    """Bug #5531: export fails for large files
Steps: upload 2.1 GB CSV, click Export. Error id 7f3e2a10-94c1-4b7e-9d55-0c2a6e11b0f4.
Affected build 2.9.14 (hash a94a8fe5ccb19ba61c4c0873d391e987982fbbd3). No PII involved.""",
    """[보험금 청구] 접수번호 C-2403-55182
피보험자: ⟦PERSON:신동엽⟧ / 주민등록번호 ⟦NATIONAL_ID/rrn:720618-152347?⟧
입금 계좌: 국민은행 ⟦BANK_ACCOUNT:123456-01-234567⟧
진단명 코드 K35.8, 입원 3/2~3/6""",
    """Case #88102 – chargeback
Cardholder ⟦PERSON:Michael Tan⟧ disputes a charge of SGD 420.00 on ⟦CREDIT_CARD/luhn:5105 1051 0510 510?⟧.
Merchant ref MR-99120-SG. Cardholder phone ⟦PHONE:+65 6123 4567⟧.""",
    """[티켓] 비밀번호 초기화
사번 E20231187 ⟦PERSON:유재석⟧ 님 요청. 임시 비밀번호 ⟦SECRET:Tmp!8842kq⟧ 발급, 최초 로그인 시 변경 필요.
접속 IP ⟦IP_ADDRESS:172.16.40.12⟧ 에서 5회 실패로 잠금 해제 처리.""",
    """Ticket 3390 | VPN gateway flapping
Peer ⟦IP_ADDRESS:2001:db8:4f:1a::20⟧ dropped 14 times between 01:00 and 03:00.
Tunnel id 0x3f2a, MTU 1400, rekey interval 3600s.""",
    """[민원] 운전면허 갱신 대행 서비스 문의
신청인 ⟦PERSON:배수지⟧, 면허번호 ⟦DRIVER_LICENSE:11-19-174528-62⟧, 갱신기한 2024.06.30
연락: ⟦PHONE:010-4412-0093⟧""",
    """Ticket #7701: customer asks to delete their data (GDPR art. 17)
Name: ⟦PERSON:Lena Fischer⟧, email ⟦EMAIL:lena.fischer@web.de⟧, address ⟦LOCATION:Torstraße 120, 10119 Berlin⟧.
Account created 2019-11-02. Deadline 2024-04-19.""",
]

HR_FORMS = [
    """[입사자 정보 등록]
성명: ⟦PERSON:김민준⟧
주민등록번호: ⟦NATIONAL_ID:900101-1234568⟧
휴대폰: ⟦PHONE:010-2345-6789⟧
이메일: ⟦EMAIL:minjun.kim@daon-soft.kr⟧
주소: ⟦LOCATION:서울특별시 강남구 테헤란로 152, 강남파이낸스센터 21층⟧
급여계좌: 하나은행 ⟦BANK_ACCOUNT:352-910234-51107⟧
입사일: 2024-04-01 / 직급: 사원 / 부서: 플랫폼개발팀""",
    """[경력증명서 발급 신청서]
신청인: ⟦PERSON:이서준⟧ (사번 20190412)
생년월일: ⟦DATE:1991.02.17⟧
재직기간: 2019.04.15 ~ 2024.02.29
용도: 금융기관 제출 / 수령 방법: 이메일(⟦EMAIL:seojun.lee91@gmail.com⟧)""",
    """EMPLOYEE CHANGE FORM
Name: ⟦PERSON:Emily Carter⟧    Employee ID: 004417
SSN: ⟦NATIONAL_ID:536-90-4399⟧
New address: ⟦LOCATION:2207 Oak Street, Apt 5B, Portland, OR 97205⟧
New phone: ⟦PHONE:503-555-0148⟧
Effective: 04/01/2024   Approved by: ⟦PERSON:R. Gomez⟧""",
    """[연말정산 부양가족 등록]
본인: ⟦PERSON:박준형⟧ ⟦NATIONAL_ID/rrn:850715-234567?⟧
배우자: ⟦PERSON:최은비⟧ ⟦NATIONAL_ID/rrn:870302-212345?⟧
자녀: ⟦PERSON:박하준⟧ ⟦NATIONAL_ID/rrn:150819312345?⟧""",
    """[해외출장 신청서]
출장자: ⟦PERSON:정하은⟧ / 여권번호 ⟦PASSPORT:M123A4567⟧ (2022년 발급)
출장지: ⟦LOCATION:독일⟧ ⟦LOCATION:프랑크푸르트⟧
기간: 2024.05.06 ~ 2024.05.11 / 예상 경비 4,200,000원
법인카드: ⟦CREDIT_CARD/luhn:4532-0151-1283-036?⟧""",
    """New hire checklist – ⟦PERSON:Noah Kim⟧
[x] laptop asset tag LT-22918
[x] badge #30412
[ ] payroll: bank routing 021000021, account ⟦BANK_ACCOUNT:483920117⟧
[ ] emergency contact: ⟦PERSON:Grace Kim⟧ ⟦PHONE:(212) 555-0163⟧""",
    """[휴가 신청서]
신청자: ⟦PERSON:한지민⟧ / 기간: 2024.04.08 ~ 2024.04.12 (5일) / 사유: 개인 사정
업무 대행: ⟦PERSON:오지호⟧ 대리 / 비상연락처: ⟦PHONE:010-6634-1120⟧""",
    """[외국인 직원 체류 정보]
성명: ⟦PERSON:John Miller⟧ / 국적: ⟦LOCATION:미국⟧
외국인등록번호: ⟦NATIONAL_ID/frn:820505-517231?⟧
여권번호: ⟦PASSPORT:546813902⟧ / 체류만료 2025-12-31
사무실 전화: ⟦PHONE:031-8017-2245⟧""",
    """[법인차량 운행 신청]
운전자: ⟦PERSON:서강준⟧ / 운전면허번호: ⟦DRIVER_LICENSE:13-08-021457-31⟧
차량번호: 12가 3456 / 운행일 2024-03-27 / 목적지: ⟦LOCATION:수원⟧ 공장""",
    """Performance review 2023 – summary
Reviewee: ⟦PERSON:Hannah Lee⟧ (L5). Rating: 4/5. Promotion recommended for Q2.
Comp: base +6.5%, bonus 12%. Calibration meeting 2024-02-14, panel of 5.""",
    """[퇴직금 지급 신청]
퇴직자: ⟦PERSON:윤서영⟧ (⟦NATIONAL_ID/rrn:780921-201457?⟧)
지급 계좌: 농협 ⟦BANK_ACCOUNT:302-1234-5678-91⟧
퇴직일: 2024.03.31 / 근속 14년 2개월""",
    """Contractor onboarding
Company: Brightwater Ltd (VAT GB 123 4567 89)
Contact: ⟦PERSON:Oliver Bennett⟧, ⟦EMAIL:o.bennett@brightwater.co.uk⟧, ⟦PHONE:+44 161 496 0753⟧
Bank: IBAN ⟦IBAN/iban:GB??BARC20000055779911⟧""",
]

LOGS = [
    "2024-03-21T09:14:02.331Z INFO  api.auth login ok user=⟦EMAIL:j.park@daon-soft.kr⟧ ip=⟦IP_ADDRESS:211.36.142.7⟧ latency=42ms req=8c1f2a7e",
    "2024-03-21T09:14:05.102Z WARN  api.auth failed login user=admin ip=⟦IP_ADDRESS:45.133.1.90⟧ attempts=5 lock=true",
    "Mar 21 09:15:11 web-03 nginx[1123]: ⟦IP_ADDRESS:66.249.66.1⟧ - - \"GET /api/v2/orders/88213 HTTP/1.1\" 200 1532 \"-\" \"Googlebot/2.1\"",
    "2024-03-21 09:16:44,512 ERROR payment.gateway charge failed card=⟦CREDIT_CARD/luhn:491633850608283?⟧ code=card_declined order=ORD-55120",
    "[2024-03-21 09:17:00] DEBUG http.client POST https://api.example.com/v1/charges headers={{'Authorization': 'Bearer ⟦SECRET:{j}⟧'}}".format(j=jwt()).replace(
        "https://api.example.com/v1/charges", "⟦URL:https://api.example.com/v1/charges⟧"),
    "level=info ts=2024-03-21T09:18:22Z caller=main.go:88 msg=\"config loaded\" version=1.22.3 build=7d3c2e1 workers=16",
    "2024-03-21 09:19:03 INFO  sms.sender sent to=⟦PHONE:+821041237788⟧ template=OTP_V2 status=DELIVERED msg_id=5d0c3a9b-8c11-4e5e-b1f2-9a8b7c6d5e4f",
    "2024-03-21T09:20:41Z ERROR db.pool connect failed dsn=⟦SECRET:mysql://billing:N0tS0S3cret!@10.0.3.21:3306/billing⟧ err=timeout after 5000ms",
    "time=\"2024-03-21T09:21:07+09:00\" level=warning msg=\"slow query\" duration=3.214s rows=120443 table=order_items",
    "2024-03-21 09:22:13.004 [worker-7] INFO  export.job job=4471 file=/data/exports/2024/03/customers_20240321.csv size=88.2MB elapsed=12.8s",
    "09:23:55.120 kernel: [172311.442] eth0: link up 10000 Mbps full duplex, mac 00:1a:2b:3c:4d:5e",
    "2024-03-21T09:24:30Z INFO  crm.sync upserted contact name=\"⟦PERSON:Chen Wei⟧\" email=⟦EMAIL:chen.wei@lotusgroup.cn⟧ phone=\"⟦PHONE:+86 138 0013 8000⟧\"",
    "2024-03-21T09:25:02Z DEBUG env loaded: GITHUB_TOKEN=⟦SECRET:ghp_{g}⟧ NODE_ENV=production PORT=8080".format(g=tok(36)),
    "2024-03-21T09:26:11Z INFO  ipv6 client ⟦IP_ADDRESS:2001:db8:85a3::8a2e:370:7334⟧ connected via h2, tls=1.3",
    "2024-03-21 09:27:40 INFO  batch settlement id=STL-20240321-0007 count=3,412 total=₩482,110,500 status=OK",
    "2024-03-21 09:28:00 ERROR signup.validate rejected rrn for user_id=918273: field=rrn value=⟦NATIONAL_ID/rrn:950823-123456?⟧ reason=duplicate",
    "2024-03-21 09:29:31 INFO  anthropic.client request_id=req_01HS8X3K9Q2W model=claude-3-haiku tokens_in=812 tokens_out=244 key=⟦SECRET:sk-ant-api03-{a}⟧".format(a=tok(93, B64URL)),
    "2024-03-21T09:30:00Z INFO  health ok uptime=86400s rss=412MB goroutines=311 gc_pause_p99=1.8ms",
    "2024-03-21 09:31:17 WARN  geo.lookup unknown ip ⟦IP_ADDRESS:100.64.12.9⟧ (CGNAT), defaulting region to ap-northeast-2",
    "2024-03-21 09:32:45 INFO  webhook delivered url=⟦URL:https://hooks.brightpath.io/in/73ab91⟧ status=204 attempt=1",
    "2024-03-21 09:33:02 INFO  google.maps geocode key=⟦SECRET:AIza{k}⟧ q=\"⟦LOCATION:서울 중구 세종대로 110⟧\"".format(k=tok(35, B64URL)),
    "2024-03-21 09:34:19 DEBUG payout.kr bank=088 account=⟦BANK_ACCOUNT:110-354-902117⟧ amount=1,200,000 holder=⟦PERSON:김하나⟧",
]

MEETINGS = [
    """[주간 영업회의] 2024-03-18 (월) 10:00, 본사 7층 회의실
참석: ⟦PERSON:최민호⟧ 과장, ⟦PERSON:김서연⟧ 대리, ⟦PERSON:이준기⟧ 사원
1. 3월 누적 매출 12.4억 (목표 대비 93%)
2. 신규 고객사 담당자 ⟦PERSON:박영수⟧ 이사 연락처 ⟦PHONE:010-7720-3145⟧ 공유
3. 다음 회의 3/25 같은 시간""",
    """Weekly sync – 2024-03-19
Attendees: ⟦PERSON:Priya Nair⟧, ⟦PERSON:Tom Becker⟧, ⟦PERSON:Jaeho Shin⟧
- Q1 OKR progress 0.7; churn down to 2.1%
- Security: rotate the shared Slack token ⟦SECRET:xoxp-{a}-{b}-{c}⟧ (posted by mistake last week)
- Next: offsite in ⟦LOCATION:Lisbon⟧, May 20-22""".format(a=tok(11, string.digits), b=tok(12, string.digits), c=tok(32, "0123456789abcdef")),
    """[개발팀 스탠드업] 3/20
- ⟦PERSON:도현⟧: 결제 모듈 리팩터링 70%, PR #912 리뷰 요청
- ⟦PERSON:수빈⟧: 스테이징 서버 ⟦IP_ADDRESS:10.10.1.50⟧ 디스크 92% → 로그 정리 예정
- ⟦PERSON:하린⟧: iOS 빌드 2.4.1(37) 심사 제출
블로커 없음""",
    """Board meeting minutes (draft) – 2024-03-15
Present: 7 of 9 directors. Quorum confirmed at 14:03.
Resolution 2024-07: approve FY2023 accounts (revenue 48.2bn KRW, EBITDA 6.1bn).
Next meeting: 2024-06-14.""",
    """[고객 미팅 메모] ⟦PERSON:Robert Hayes⟧ (BrightPath), 3/21 화상
- 계약 갱신 의향 있음, 단가 5% 인하 요청
- 기술 담당 ⟦PERSON:Linda Gomez⟧ ⟦EMAIL:linda.gomez@brightpath.io⟧ 와 후속 미팅
- 본사 주소 ⟦LOCATION:500 Howard Street, San Francisco⟧ 방문 일정 조율""",
    """Retro notes sprint 41
went well: 23/25 points done, zero P1s
to improve: flaky test test_checkout_retry (fails ~4%), build time 14m → target 8m
action: ⟦PERSON:Ana⟧ to split e2e suite; ⟦PERSON:Ben⟧ to cache node_modules""",
    """[인사위원회 회의록] 2024-03-22
안건: ⟦PERSON:강민석⟧ 책임 징계 건 (사번 E20150933)
참석: 위원 5인. 결과: 견책. 본인 통지: ⟦EMAIL:minseok.kang@hanbit-logis.co.kr⟧ 로 송부""",
    """Incident review INC-7781
Timeline (UTC): 05:12 alert, 05:15 ack by ⟦PERSON:Erin Walsh⟧, 05:40 mitigated, 06:05 resolved.
Impact: 1.8% of checkout requests failed (≈ 4,100 orders). Customer comms sent 07:00.""",
    """[프로젝트 킥오프] 물류 통합 플랫폼
일정: 2024.04 ~ 2024.12 (9개월), 예산 18억
PM: ⟦PERSON:윤태호⟧ / 고객사 PM: ⟦PERSON:Sarah Connor⟧ (⟦EMAIL:sarah.connor@northwind-traders.com⟧)
협업툴: ⟦URL:https://northwind.atlassian.net/jira/software/projects/NWL⟧""",
    """1:1 notes – ⟦PERSON:Minji⟧ / ⟦PERSON:Kevin⟧, 03/22
- career: wants to move to platform team in H2
- comp questions -> HR (case HR-3391)
- vacation 4/15–4/19 approved""",
]

INVOICES = [
    """세금계산서
공급자: (주)다온소프트 | 등록번호 ⟦BUSINESS_ID/brn:105-87-5432?⟧ | 대표 ⟦PERSON:강지훈⟧
공급받는자: 주식회사 한빛로지스 | 등록번호 ⟦BUSINESS_ID/brn:220-81-6278?⟧
작성일자 2024-03-31 | 공급가액 3,450,000 | 세액 345,000 | 합계 3,795,000
품목: 클라우드 사용료(3월) 1식""",
    """INVOICE #INV-2024-0412
Bill to: Hanbit Logis Co., Ltd., ⟦LOCATION:396 World Cup buk-ro, Mapo-gu, Seoul⟧
From: Northwind Traders GmbH, ⟦LOCATION:Friedrichstraße 68, 10117 Berlin⟧
Qty 40 x Pallet sensor PS-200 @ EUR 312.00 = EUR 12,480.00
Pay to IBAN ⟦IBAN/iban:DE?? 3704 0044 0532 0130 00⟧ within 30 days. VAT ID DE811907980.""",
    """[입금 요청서]
청구번호: BILL-240315-022 / 청구금액 ₩2,640,000 (VAT 포함)
입금 계좌: 기업은행 ⟦BANK_ACCOUNT:010-123456-01-011⟧ (예금주 (주)다온소프트)
입금 기한: 2024년 4월 10일 / 문의 ⟦PHONE:02-6952-1100⟧""",
    """Receipt
Merchant: Blue Bottle Coffee #0231, ⟦LOCATION:Seongsu-dong, Seoul⟧
2024-03-20 08:41  Cafe Latte x2  ₩13,000
VISA ************1881  AUTH 004123
Thank you!""",
    """Purchase order PO-2024-0087
Vendor: Brightwater Ltd | VAT GB123456789 | ⟦EMAIL:orders@brightwater.co.uk⟧
Line 1: SKU 4111-0021 cable kit, 200 pcs, GBP 3.40 = GBP 680.00
Line 2: SKU 4111-0045 connector, 1,000 pcs, GBP 0.42 = GBP 420.00
Total GBP 1,100.00, terms net 45""",
    """거래명세서 No. 2024-0321-07
거래처: 주식회사 미래상사 (사업자 ⟦BUSINESS_ID/brn:617-86-1130?⟧)
납품일 2024.03.21 / 품목 A4 복사용지 50박스 × 24,500 = 1,225,000
인수자 서명: ⟦PERSON:노은지⟧""",
    """Statement for account 7730-1142 (March 2024)
Opening balance USD 12,004.18; payments −4,250.00; charges 1,318.62; closing USD 9,072.80.
Card on file: ⟦CREDIT_CARD/luhn:6011 0009 9013 942?⟧. Autopay on the 5th.""",
    """[카드 매출전표]
가맹점: 판교 한식당 / 사업자 ⟦BUSINESS_ID/brn:129-39-8470?⟧
카드번호: ⟦CREDIT_CARD/luhn:3569-9900-1009-509?⟧ / 승인번호 30215588 / 일시불
금액 86,000원 / 2024-03-19 19:42""",
    """Invoice 10482 — Consulting services March 2024
Consultant: ⟦PERSON:Laura Chen⟧, 36.5 h @ USD 180 = USD 6,570.00
Remit to: ⟦BANK_ACCOUNT:000123456789⟧ (ABA 026009593), or pay online at ⟦URL:https://pay.brightpath.io/i/10482⟧""",
    """Facture n° F-2024-118
Client: Daon Soft, ⟦LOCATION:235 Pangyoyeok-ro, Seongnam⟧
Montant TTC 9 840,00 EUR — IBAN ⟦IBAN/iban:FR??20041010050500013M02606⟧
Contact: ⟦PERSON:Julien Moreau⟧ ⟦PHONE:+33 1 42 68 53 00⟧""",
]

# Lines full of numbers that look like PII but are not (no spans), plus near-misses whose
# check digits are wrong.
NEGATIVES = [
    "주문번호 2024031512345 / 결제금액 ₩1,250,000 / 결제일 2024-03-15 14:22:31",
    "Order #100234-5567 placed on 03/15/2024 at 2:22 PM, total $4,111.11 (tax $311.11)",
    "릴리스 v2.13.4 (빌드 20240315.3) 배포 완료, 이전 버전 v2.13.3",
    "build 10.0.19045.3803 installed; reboot required",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "request_id=550e8400-e29b-41d4-a716-446655440000 trace=4bf92f3577b34da6a3ce929d0e0e4736",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (HEAD -> main, origin/main)",
    "회의실 예약: 2024.03.22 14:00~15:30, 7층 701호, 참석 8명",
    "재고 1,234,567개, 단가 12,300원, 합계 15,185,174,100원",
    "Tracking number 9400 1000 0000 0000 0000 00 (USPS), shipped 2024-03-15",
    "ISO 9001:2015 인증 / KS X ISO/IEC 27001:2022 인증 획득",
    "latency p50=12.4ms p95=88.1ms p99=212.0ms over 1,048,576 requests",
    "Invoice INV-20240315-0042 due 2024-04-14, amount EUR 1,980.00",
    "택배 송장번호 6301-2245-8812, 박스 3개, 무게 12.5kg",
    "The meeting moved from 10:30 to 11:45; dial-in code 8812 3390 #",
    "좌표 37.5665, 126.9780 (서울시청) 기준 반경 3km",
    "product code 8801234567893 (EAN-13), lot 24C15, exp 2026-03",
    "월별 매출: 1월 3.2억, 2월 2.9억, 3월 4.1억 (전년 대비 +12.3%)",
    "Version 1.2.3.4567 of the driver fixes bug 20413",
    "timestamp 1710483751 (epoch), 1710483751123 in ms",
    "우편물 등기번호 1234-5678-9012 조회 결과: 배달 완료",
    "docker image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 pulled",
    "Room 1203, extension 4421, floor plan rev 7",
    "Q1 FY24: revenue 1,024.7M, opex 812.3M, headcount 1,180",
    "오늘 환율 1,342.50원/USD, 코스피 2,718.76 (+0.84%)",
    "uuid 123e4567-e89b-12d3-a456-426614174000 assigned to batch 77",
    "IP 대역 공지는 추후 메일로 안내드립니다 (현재 미정)",
    "PO 4111-0021 and PO 4111-0045 were merged into PO 4111-0099",
    "API rate limit: 600 requests/min, burst 1,200, window 60s",
    "견적 유효기간 2024.04.30까지, 납기 발주 후 6주",
    "The error code 0x80070005 means access denied (see KB 4022719)",
    "Serial SN-88213-XK-2207, firmware 3.0.12, MAC 00:1B:44:11:3A:B7",
    "하루 평균 방문자 12,480명, 전환율 3.42%, 객단가 58,200원",
    # Near misses with wrong check digits (not PII by the rules of their format).
    "test card " + neg_bad("luhn", "4111 1111 1111 111?") + " must be rejected by the validator",
    "잘못된 주민번호 예시: 900230-1234568 (2월 30일은 없는 날짜)",
    "사업자번호 오타 " + neg_bad("brn", "220-81-6278?") + " 는 조회되지 않습니다",
    "IBAN " + neg_bad("iban", "DE?? 3704 0044 0532 0130 00") + " failed the checksum, please recheck",
    "order number 2024-0315-8842-1190 and batch 4412-7781",
    "2024년 3월 15일 오후 2시 30분, 장소: 본관 3층",
    "Copyright © 2009-2024. All rights reserved. Build 20240315-1422.",
]

TICKETS.append(
    "Ticket #SEC-229: private key committed to infra repo (terraform/keys/deploy.pem)\n"
    "Content as found:\n⟦SECRET:" + pem() + "⟧\n"
    "Revoked and replaced by ⟦PERSON:Erin Walsh⟧; fingerprint SHA256:9tXk2a1QpLm. Repo history rewritten.")
CHATS.append(
    "이거 서버 키인데 잠깐 확인 좀 ㅠㅠ\n⟦SECRET:" + pem("OPENSSH PRIVATE KEY", 3) + "⟧\n아 잘못 올렸다 지울게요")


# Short form-like lines that exercise the format variants of each pattern label.
VARIANTS = [
    "연락처: ⟦PHONE:01098765432⟧ (하이픈 없이 입력)",
    "휴대전화 ⟦PHONE:011-234-5678⟧ (구 번호), 새 번호 ⟦PHONE:010-2234-5678⟧",
    "대표번호 ⟦PHONE:1588-1234⟧ / 팩스 ⟦PHONE:02-3456-7891⟧",
    "Tel. ⟦PHONE:(02) 3456-7890⟧ · Fax ⟦PHONE:(031) 987-6543⟧",
    "해외에서 거실 때는 ⟦PHONE:+82 10-4821-7730⟧ 으로 연락 주세요",
    "제주 지사 ⟦PHONE:064.712.3456⟧, 광주 지사 ⟦PHONE:062-410-2231⟧",
    "Tokyo office ⟦PHONE:+81 3-1234-5678⟧, Shanghai office ⟦PHONE:+86 21 6123 4567⟧",
    "US support line ⟦PHONE:+1 800 555 0199⟧ (toll free), direct ⟦PHONE:917-555-0142⟧",
    "UK mobile ⟦PHONE:07700 900123⟧ — please text, don't call",
    "주민등록번호(하이픈 없이): ⟦NATIONAL_ID/rrn:030512412345?⟧",
    "주민번호 ⟦NATIONAL_ID/rrn:660101-100001?⟧ 확인 완료",
    "2020년 10월 이후 발급된 주민번호 ⟦NATIONAL_ID:011015-3847261⟧ 는 검증번호가 맞지 않을 수 있습니다",
    "SSN ⟦NATIONAL_ID:078-05-1120⟧ on the W-4 form",
    "카드번호 ⟦CREDIT_CARD/luhn:411111111111?⟧ (13자리 구형 VISA)",
    "Mastercard 2-series: ⟦CREDIT_CARD/luhn:2221 0012 3412 345?⟧",
    "JCB ⟦CREDIT_CARD/luhn:3530-1113-3330-000?⟧ 유효기간 08/26",
    "UnionPay ⟦CREDIT_CARD/luhn:6200 0000 0000 000?⟧",
    "IBAN ⟦IBAN/iban:NL??ABNA0417164300⟧ (Netherlands)",
    "IBAN ⟦IBAN/iban:ES?? 2100 0418 4502 0005 1332⟧",
    "Swiss account ⟦IBAN/iban:CH??0483 5012 3456 7100 0⟧",
    "IBAN: ⟦IBAN/iban:IT??X0542811101000000123456⟧ — bonifico entro venerdì",
    "사업자등록번호 ⟦BUSINESS_ID/brn:1248100998⟧".replace("⟦BUSINESS_ID/brn:1248100998⟧", "⟦BUSINESS_ID/brn:124810099?⟧"),
    "법인등록번호: ⟦BUSINESS_ID/crn:134511-000123?⟧",
    "접속 기록: ⟦IP_ADDRESS:8.8.8.8⟧, ⟦IP_ADDRESS:1.1.1.1⟧, ⟦IP_ADDRESS:172.31.255.254⟧",
    "listen on ⟦IP_ADDRESS:0.0.0.0⟧:8080 and [⟦IP_ADDRESS:2001:db8::10⟧]:8080",
    "IPv6 ⟦IP_ADDRESS:fe80::1ff:fe23:4567:890a⟧ (link-local), ⟦IP_ADDRESS:2001:0db8:0000:0000:0000:ff00:0042:8329⟧",
    "email me: ⟦EMAIL:first.last+invoices@sub.example.co.uk⟧ or ⟦EMAIL:o'brien@example.ie⟧",
    "메일: ⟦EMAIL:홍길동@회사.kr⟧ (한글 도메인)",
    "GitLab token ⟦SECRET:glpat-{gl}⟧ expires 2024-06-30",
    "Stripe restricted key ⟦SECRET:rk_live_{rk}⟧",
    "AWS temporary key ⟦SECRET:ASIA{asia}⟧ with session token",
    "Anthropic: ⟦SECRET:sk-ant-api03-{ant}⟧",
    "Authorization: Bearer ⟦SECRET:{bearer}⟧",
    "config.json: {{\"api_key\": \"⟦SECRET:{apik}⟧\", \"region\": \"ap-northeast-2\"}}",
    "DB_PASSWORD=⟦SECRET:pa55W0rd-2024⟧",
    "redis://:⟦SECRET:{redis}⟧@cache.internal:6379/0".replace("redis://:⟦SECRET:{redis}⟧@cache.internal:6379/0", "⟦SECRET:redis://:{redis}@cache.internal:6379/0⟧"),
    "신한은행 ⟦BANK_ACCOUNT:110-123-456789⟧ 으로 입금 부탁드립니다",
    "송금 계좌 우리 ⟦BANK_ACCOUNT:1002-123-456789⟧ / 국민 ⟦BANK_ACCOUNT:123401-04-123456⟧",
    "여권 구형 ⟦PASSPORT:M12345678⟧ / 신형 ⟦PASSPORT:M123B4567⟧",
    "운전면허 ⟦DRIVER_LICENSE:서울 12-345678-90⟧ (구형 표기)",
    "홈페이지 ⟦URL:https://www.daon-soft.kr⟧ · 채용 ⟦URL:http://careers.daon-soft.kr/jobs?id=42&ref=mail⟧",
    "see ⟦URL:https://github.com/garim-dev/garim/issues/3⟧ and ⟦URL:www.example.com/pricing⟧.",
]
VARIANTS = [
    v.format(
        gl=tok(20, B64URL), rk=tok(32), asia=tok(16, UPPER_NUM), ant=tok(93, B64URL),
        bearer=tok(40, B64URL), apik=tok(32, "0123456789abcdef"), redis=tok(24),
    ) if "{" in v else v
    for v in VARIANTS
]

FILES = [
    ("emails", EMAILS),
    ("chat", CHATS),
    ("tickets", TICKETS),
    ("hr_forms", HR_FORMS),
    ("logs", LOGS),
    ("meetings", MEETINGS),
    ("invoices", INVOICES),
    ("variants", VARIANTS),
    ("negatives", NEGATIVES),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    totals = {}
    ndocs = 0
    for name, docs in FILES:
        path = os.path.join(OUT, name + ".jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i, marked in enumerate(docs):
                text, spans = render(marked)
                if name == "negatives":
                    assert not spans, text
                for s in spans:
                    totals[s["label"]] = totals.get(s["label"], 0) + 1
                doc = {"id": f"{name}-{i:03d}", "text": text, "spans": spans}
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
                ndocs += 1
    print(f"{ndocs} documents in {OUT}", file=sys.stderr)
    for label in sorted(totals):
        print(f"  {label:<15} {totals[label]}", file=sys.stderr)


if __name__ == "__main__":
    main()
