//! Validators for regex rule candidates: checksums, date checks and range checks.
//!
//! A regex finds text *shaped* like an identifier; a validator says whether it can be one.
//! Rules name a validator by its string id (see [`Validator::ALL`]); the set is fixed because
//! each validator is code. Every validator takes the whole candidate text of one match and
//! returns an [`Outcome`]:
//!
//! * [`Outcome::Valid`]`(len)`: it passes; the finding covers the first `len` bytes of the
//!   candidate (validators may trim a greedy tail, e.g. an IBAN followed by `EUR`).
//! * [`Outcome::ChecksumFailed`]`(len)`: well formed (dates, ranges and lengths hold) but the
//!   check digit does not. Rules with `invalid_score` keep such candidates at that score (Korean
//!   resident numbers issued since October 2020 carry no checksum), others drop them.
//! * [`Outcome::Invalid`]: cannot be a value of this kind; always dropped.
//!
//! Validators only look at ASCII digits and letters: patterns must be written with `[0-9]`,
//! never Unicode `\d`. Nothing here allocates.
//!
//! Limits: no network or issuer lookups; a checksum-valid number can still be fake.

use std::fmt;
use std::str::FromStr;

/// The result of validating one candidate. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passes; the finding covers the first `len` bytes of the candidate.
    Valid(usize),
    /// Well formed, but the check digit does not hold; covers the first `len` bytes.
    ChecksumFailed(usize),
    /// Not a value of this kind.
    Invalid,
}

/// The validators a rule can name with `validator = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validator {
    /// Payment card: 13-19 digits, one kind of separator, issuer prefix and length, Luhn.
    CreditCard,
    /// Korean resident registration number: date of birth, gender/century digit, checksum.
    KrRrn,
    /// Korean business registration number (NNN-NN-NNNNN): checksum.
    KrBrn,
    /// US social security number: no 000/666/9xx area, no 00 group, no 0000 serial.
    UsSsn,
    /// IBAN: per-country length and the ISO 7064 mod-97 check.
    Iban,
    /// Dotted-quad IPv4: exactly four octets, each 0-255, no leading zeros.
    Ipv4,
    /// IPv6 as parsed by `std::net::Ipv6Addr`, with at least two non-empty groups and a digit.
    Ipv6,
    /// International phone number: 8 to 15 digits in all.
    E164,
    /// A random-looking token: contains an ASCII digit, an upper- and a lower-case letter.
    SecretToken,
    /// Korean foreigner registration number: like [`Validator::KrRrn`] (7th digit 5-8), with
    /// the foreigner check digit `(13 - Σ mod 11) mod 10`.
    KrFrn,
    /// Korean corporate registration number (NNNNNN-NNNNNNN): weights 1,2,1,2,... mod 10. Defers
    /// to resident and foreigner numbers: a candidate shaped like one (valid date, 7th digit
    /// 1-8) is [`Outcome::Invalid`] here, so the national-ID rules keep it.
    KrCrn,
    /// [`Validator::KrCrn`] without deferring: for rules that saw a corporate-number context.
    KrCrnAny,
    /// URL: trims trailing sentence punctuation and unbalanced closing brackets.
    Url,
    /// MAC address: six octets with one kind of separator (or three dotted quads), not all the
    /// same octet.
    Mac,
    /// Bitcoin address: Base58Check (version 0 or 5) or bech32/bech32m (`bc1`).
    BtcAddress,
    /// Ethereum address `0x` + 40 hex digits, not all one digit, with letters and digits.
    EthAddress,
    /// The value of a `password=...` pair: rejects code (`&str`, `String`, `self.pass`, `{}`),
    /// placeholders (`****`, `${VAR}`, `<password>`, `null`) and snake_case identifiers.
    PasswordValue,
    /// An unquoted password value: [`Validator::PasswordValue`], and it must hold a digit or a
    /// symbol (bare words after `password =` are variables in code: `user`, `auth`, `bool`).
    PasswordBare,
    /// A bearer token: a letter and a digit; not a JWT or a key with a known prefix (their own
    /// rules report those).
    BearerToken,
    /// The value of an `api_key=`/`client_secret:` field: like [`Validator::BearerToken`].
    GenericSecret,
    /// A card number seen after a card word: 14-19 digits (one kind of separator) and Luhn,
    /// any issuer prefix (domestic cards such as Korean 9410... have none of the global ones).
    CardLuhn,
}

impl Validator {
    pub const ALL: [Validator; 21] = [
        Validator::CreditCard,
        Validator::KrRrn,
        Validator::KrBrn,
        Validator::UsSsn,
        Validator::Iban,
        Validator::Ipv4,
        Validator::Ipv6,
        Validator::E164,
        Validator::SecretToken,
        Validator::KrFrn,
        Validator::KrCrn,
        Validator::KrCrnAny,
        Validator::Url,
        Validator::Mac,
        Validator::BtcAddress,
        Validator::EthAddress,
        Validator::PasswordValue,
        Validator::PasswordBare,
        Validator::BearerToken,
        Validator::GenericSecret,
        Validator::CardLuhn,
    ];

    /// The id rules use: `credit_card`, `kr_rrn`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Validator::CreditCard => "credit_card",
            Validator::KrRrn => "kr_rrn",
            Validator::KrBrn => "kr_brn",
            Validator::UsSsn => "us_ssn",
            Validator::Iban => "iban",
            Validator::Ipv4 => "ipv4",
            Validator::Ipv6 => "ipv6",
            Validator::E164 => "e164",
            Validator::SecretToken => "secret_token",
            Validator::KrFrn => "kr_frn",
            Validator::KrCrn => "kr_crn",
            Validator::KrCrnAny => "kr_crn_any",
            Validator::Url => "url",
            Validator::Mac => "mac",
            Validator::BtcAddress => "btc_address",
            Validator::EthAddress => "eth_address",
            Validator::PasswordValue => "password_value",
            Validator::PasswordBare => "password_bare",
            Validator::BearerToken => "bearer_token",
            Validator::GenericSecret => "generic_secret",
            Validator::CardLuhn => "card_luhn",
        }
    }

    /// Validates one candidate (the whole text of a regex match).
    pub fn check(self, candidate: &str) -> Outcome {
        match self {
            Validator::CreditCard => credit_card(candidate),
            Validator::KrRrn => kr_rrn(candidate),
            Validator::KrBrn => kr_brn(candidate),
            Validator::UsSsn => whole(candidate, us_ssn(candidate)),
            Validator::Iban => iban(candidate),
            Validator::Ipv4 => whole(candidate, ipv4(candidate) && ipv4_personal(candidate)),
            Validator::Ipv6 => ipv6_candidate(candidate),
            Validator::E164 => whole(candidate, e164(candidate)),
            Validator::SecretToken => whole(candidate, secret_token(candidate)),
            Validator::KrFrn => kr_frn(candidate),
            Validator::KrCrn => kr_crn(candidate, true),
            Validator::KrCrnAny => kr_crn(candidate, false),
            Validator::Url => url(candidate),
            Validator::Mac => whole(candidate, mac(candidate)),
            Validator::BtcAddress => whole(candidate, btc_address(candidate)),
            Validator::EthAddress => whole(candidate, eth_address(candidate)),
            Validator::PasswordValue => whole(candidate, password_value(candidate)),
            Validator::PasswordBare => password_bare(candidate),
            Validator::BearerToken | Validator::GenericSecret => {
                whole(candidate, bearer_token(candidate))
            }
            Validator::CardLuhn => card_luhn(candidate),
        }
    }
}

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown validator id; holds the id (rule-file text, not user data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown validator `{0}` (expected one of: credit_card, kr_rrn, kr_frn, kr_brn, kr_crn, kr_crn_any, us_ssn, iban, ipv4, ipv6, e164, secret_token, url, mac, btc_address, eth_address, password_value, password_bare, bearer_token, generic_secret, card_luhn)")]
pub struct UnknownValidator(pub String);

impl FromStr for Validator {
    type Err = UnknownValidator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Validator::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownValidator(s.to_owned()))
    }
}

fn whole(candidate: &str, ok: bool) -> Outcome {
    if ok {
        Outcome::Valid(candidate.len())
    } else {
        Outcome::Invalid
    }
}

/// Collects up to `N` ASCII digits of `s`, ignoring every other byte. `None` if there are more.
fn digits<const N: usize>(s: &str) -> Option<([u8; N], usize)> {
    let mut out = [0u8; N];
    let mut n = 0;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            if n == N {
                return None;
            }
            out[n] = b - b'0';
            n += 1;
        }
    }
    Some((out, n))
}

/// The Luhn (mod 10) check over digit values (0-9), rightmost digit being the check digit.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn leading(d: &[u8], n: usize) -> u32 {
    d[..n].iter().fold(0, |acc, &x| acc * 10 + u32::from(x))
}

/// Whether the digits have the length and prefix of a Visa, Mastercard, American Express,
/// Discover, JCB or UnionPay card.
pub fn card_issuer_ok(d: &[u8]) -> bool {
    let len = d.len();
    if !(13..=19).contains(&len) {
        return false;
    }
    let p1 = leading(d, 1);
    let p2 = leading(d, 2);
    let p3 = leading(d, 3);
    let p4 = leading(d, 4);
    let visa = p1 == 4 && matches!(len, 13 | 16 | 19);
    let master = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = (p2 == 34 || p2 == 37) && len == 15;
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let unionpay = p2 == 62 && (16..=19).contains(&len);
    // Diners Club (300-305, 309, 36, 38, 39), JCB's 15-digit 2131/1800, Maestro, Mir.
    let diners = ((300..=305).contains(&p3) || p3 == 309 || p2 == 36 || p2 == 38 || p2 == 39)
        && (14..=19).contains(&len);
    let jcb15 = (p4 == 2131 || p4 == 1800) && len == 15;
    let maestro = matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
    ) && (12..=19).contains(&len);
    let mir = (2200..=2204).contains(&p4) && (16..=19).contains(&len);
    visa || master || amex || discover || jcb || unionpay || diners || jcb15 || maestro || mir
}

/// The one separator a card candidate uses (`None` for bare digits), or `None` from the outer
/// option when it has another character or mixes separators (space, hyphen, dot).
fn card_separator(candidate: &str) -> Option<Option<u8>> {
    let mut sep = None;
    for b in candidate.bytes() {
        match b {
            b'0'..=b'9' => {}
            b' ' | b'-' | b'.' => {
                if sep.is_some_and(|s| s != b) {
                    return None;
                }
                sep = Some(b);
            }
            _ => return None,
        }
    }
    Some(sep)
}

/// Payment card candidate: digits with at most one kind of separator (space, hyphen or dot).
/// When the whole candidate fails, a candidate whose last separated group was absorbed from
/// following text (`4111 1111 1111 1111 123`) is retried without that group.
pub fn credit_card(candidate: &str) -> Outcome {
    let Some(sep) = card_separator(candidate) else {
        return Outcome::Invalid;
    };
    let ok = |s: &str| match digits::<19>(s) {
        Some((d, n)) => card_issuer_ok(&d[..n]) && luhn(&d[..n]),
        None => false,
    };
    card_with_retry(candidate, sep, ok)
}

/// [`credit_card`] without the issuer check (14-19 digits and Luhn), for candidates a card word
/// precedes. Defers to [`credit_card`]: a number in a known issuer range is
/// [`Outcome::Invalid`] here, so the card rule (and its finding name) keeps it.
pub fn card_luhn(candidate: &str) -> Outcome {
    let Some(sep) = card_separator(candidate) else {
        return Outcome::Invalid;
    };
    let ok = |s: &str| match digits::<19>(s) {
        Some((d, n)) => (14..=19).contains(&n) && !card_issuer_ok(&d[..n]) && luhn(&d[..n]),
        None => false,
    };
    card_with_retry(candidate, sep, ok)
}

/// The candidate if `ok`; else, for a separated candidate, the candidate without its last
/// group (absorbed from following text).
fn card_with_retry(candidate: &str, sep: Option<u8>, ok: impl Fn(&str) -> bool) -> Outcome {
    if ok(candidate) {
        return Outcome::Valid(candidate.len());
    }
    if sep.is_some() {
        if let Some(cut) = candidate.rfind([' ', '-', '.']) {
            if ok(&candidate[..cut]) {
                return Outcome::Valid(cut);
            }
        }
    }
    Outcome::Invalid
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// The 13 digits of a `NNNNNN-NNNNNNN` or `NNNNNNNNNNNNN` candidate.
fn thirteen_digits(candidate: &str) -> Option<[u8; 13]> {
    let shape_ok = match candidate.len() {
        13 => candidate.bytes().all(|b| b.is_ascii_digit()),
        14 => candidate.bytes().enumerate().all(|(i, b)| {
            if i == 6 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        }),
        _ => false,
    };
    if !shape_ok {
        return None;
    }
    match digits::<13>(candidate) {
        Some((d, 13)) => Some(d),
        _ => None,
    }
}

/// Whether the first seven digits are a date of birth and a sex/century digit 1-8 (the shape
/// of a resident or foreigner registration number; 9 and 0, the 1800s, no longer occur). A
/// birth year after the current one (`880123-4...`, an EAN-13 barcode with Korea's 880 prefix,
/// reads as 2088) is no date of birth.
fn birth_date_ok(d: &[u8; 13]) -> bool {
    let century = match d[6] {
        1 | 2 | 5 | 6 => 1900,
        3 | 4 | 7 | 8 => 2000,
        _ => 1800,
    };
    let year = century + leading(d, 2);
    let month = leading(&d[2..], 2);
    let day = leading(&d[4..], 2);
    year <= current_year() && day != 0 && day <= days_in_month(year, month)
}

/// The current UTC year (from the system clock; 2100 if the clock is unreadable, so a broken
/// clock never rejects a real number).
fn current_year() -> u32 {
    let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return 2100;
    };
    // Days to civil year (Howard Hinnant's algorithm, year part only).
    let z = since.as_secs() / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + u64::from(mp >= 10);
    u32::try_from(year).unwrap_or(2100)
}

/// Σ wᵢdᵢ over the first 12 digits with the resident-number weights 2..9,2..5.
fn rrn_weighted_sum(d: &[u8; 13]) -> u32 {
    const W: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    W.iter().zip(&d[..12]).map(|(w, &x)| w * u32::from(x)).sum()
}

/// Korean resident registration number `YYMMDD-GNNNNNN` (hyphen optional). The 7th digit
/// gives sex and century (1, 2, 5, 6: 1900s; 3, 4, 7, 8: 2000s; 9, 0: 1800s); the date must
/// exist. The last digit is `(11 - Σ wᵢdᵢ mod 11) mod 10` with weights 2..9,2..5; numbers
/// issued since October 2020 are random there, so a wrong check digit gives
/// [`Outcome::ChecksumFailed`], not [`Outcome::Invalid`].
pub fn kr_rrn(candidate: &str) -> Outcome {
    let Some(d) = thirteen_digits(candidate) else {
        return Outcome::Invalid;
    };
    if !birth_date_ok(&d) {
        return Outcome::Invalid;
    }
    if (11 - rrn_weighted_sum(&d) % 11) % 10 == u32::from(d[12]) {
        Outcome::Valid(candidate.len())
    } else {
        Outcome::ChecksumFailed(candidate.len())
    }
}

/// Korean foreigner registration number: the resident-number shape with a 7th digit 5-8 and
/// the check digit `(13 - Σ wᵢdᵢ mod 11) mod 10` (same weights). Numbers issued since October
/// 2020 carry no check digit, so a wrong one gives [`Outcome::ChecksumFailed`].
pub fn kr_frn(candidate: &str) -> Outcome {
    let Some(d) = thirteen_digits(candidate) else {
        return Outcome::Invalid;
    };
    if !(5..=8).contains(&d[6]) || !birth_date_ok(&d) {
        return Outcome::Invalid;
    }
    if (13 - rrn_weighted_sum(&d) % 11) % 10 == u32::from(d[12]) {
        Outcome::Valid(candidate.len())
    } else {
        Outcome::ChecksumFailed(candidate.len())
    }
}

/// Korean corporate registration number `NNNNNN-NNNNNNN` (registry office 4, corporation kind
/// 2, serial 6, check 1): check digit `(10 - Σ wᵢdᵢ mod 10) mod 10` with weights 1,2,1,2,...
/// (products summed as they are). With `defer`, a candidate that is also shaped like a
/// resident or foreigner number is [`Outcome::Invalid`]: without context the national-ID
/// rules, which must not miss, keep it.
pub fn kr_crn(candidate: &str, defer: bool) -> Outcome {
    let Some(d) = thirteen_digits(candidate) else {
        return Outcome::Invalid;
    };
    if defer && (1..=8).contains(&d[6]) && birth_date_ok(&d) {
        return Outcome::Invalid;
    }
    let sum: u32 = d[..12]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * if i % 2 == 0 { 1 } else { 2 })
        .sum();
    if (10 - sum % 10) % 10 == u32::from(d[12]) {
        Outcome::Valid(candidate.len())
    } else {
        Outcome::ChecksumFailed(candidate.len())
    }
}

/// Korean business registration number `NNN-NN-NNNNN` (hyphens or spaces optional): weights
/// 1,3,7,1,3,7,1,3,5 plus ⌊5·d₉/10⌋, check digit `(10 - sum mod 10) mod 10`.
pub fn kr_brn(candidate: &str) -> Outcome {
    if !candidate
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
    {
        return Outcome::Invalid;
    }
    let Some((d, 10)) = digits::<10>(candidate) else {
        return Outcome::Invalid;
    };
    const W: [u32; 9] = [1, 3, 7, 1, 3, 7, 1, 3, 5];
    let mut sum: u32 = W.iter().zip(&d[..9]).map(|(w, &x)| w * u32::from(x)).sum();
    sum += u32::from(d[8]) * 5 / 10;
    if (10 - sum % 10) % 10 == u32::from(d[9]) {
        Outcome::Valid(candidate.len())
    } else {
        Outcome::ChecksumFailed(candidate.len())
    }
}

/// US social security number `AAA-GG-SSSS` (hyphens optional): area not 000, 666 or 900-999,
/// group not 00, serial not 0000.
pub fn us_ssn(candidate: &str) -> bool {
    if !candidate.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return false;
    }
    let Some((d, 9)) = digits::<9>(candidate) else {
        return false;
    };
    let area = leading(&d, 3);
    let group = leading(&d[3..], 2);
    let serial = leading(&d[5..], 4);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// IBAN lengths of the countries we recognise (SEPA plus common others).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AT", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"EE", 20),
    (b"ES", 24),
    (b"FI", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GI", 23),
    (b"GR", 27),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MT", 31),
    (b"NL", 18),
    (b"NO", 15),
    (b"PL", 28),
    (b"PT", 25),
    (b"RO", 24),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TR", 26),
    (b"UA", 29),
];

/// The IBAN length of a country code, if the country is in the table.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}

/// ISO 7064 mod 97-10 over a compact IBAN (uppercase letters and digits, no spaces): the first
/// four characters are moved to the end, letters become 10..35, and the number mod 97 is 1.
pub fn iban_mod97(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        match b {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(b - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// IBAN candidate, compact or in space-separated groups. The country fixes the length; a
/// candidate that runs longer (a greedy match into following capitals, `... 00 EUR`) is cut
/// to that length when the cut falls on a space, and is invalid otherwise.
pub fn iban(candidate: &str) -> Outcome {
    let bytes = candidate.as_bytes();
    if bytes.len() < 4 {
        return Outcome::Invalid;
    }
    let Some(want) = iban_length(&bytes[..2]) else {
        return Outcome::Invalid;
    };
    if !bytes[2].is_ascii_digit() || !bytes[3].is_ascii_digit() {
        return Outcome::Invalid;
    }
    let mut compact = [0u8; 34];
    let mut n = 0;
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            if n == want {
                // Complete: what follows the space is other text the regex swallowed.
                end = i;
                break;
            }
            continue;
        }
        if !(b.is_ascii_uppercase() || b.is_ascii_digit()) || n == want {
            return Outcome::Invalid;
        }
        compact[n] = b;
        n += 1;
    }
    if n != want {
        return Outcome::Invalid;
    }
    if iban_mod97(&compact[..n]) {
        Outcome::Valid(end)
    } else {
        Outcome::ChecksumFailed(end)
    }
}

/// Dotted-quad IPv4: exactly four decimal octets 0-255 without leading zeros.
pub fn ipv4(candidate: &str) -> bool {
    let mut parts = 0;
    for part in candidate.split('.') {
        parts += 1;
        let b = part.as_bytes();
        if parts > 4
            || b.is_empty()
            || b.len() > 3
            || !b.iter().all(u8::is_ascii_digit)
            || (b.len() > 1 && b[0] == b'0')
        {
            return false;
        }
        if part.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    parts == 4
}

/// IPv6 accepted by `std::net::Ipv6Addr`, with at least two non-empty groups and at least one
/// decimal digit: this rejects `::`, `::1`, `Abc::Def` (code paths) and times like `12:30:45`
/// (three groups and no `::` do not parse).
pub fn ipv6(candidate: &str) -> bool {
    let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
    let first_has_digit = candidate
        .split(':')
        .find(|g| !g.is_empty())
        .is_some_and(|g| g.bytes().any(|b| b.is_ascii_digit()));
    // Two groups only (`fe80::1`, but also `C::C1`, `a::b2` in code): the first group must
    // hold a digit (or an IPv4 tail follow: `::ffff:10.0.0.1`). Three or more: a digit anywhere.
    (groups >= 3 || (groups == 2 && (first_has_digit || candidate.contains('.'))))
        && candidate.bytes().any(|b| b.is_ascii_digit())
        && candidate
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| !a.is_loopback() && !a.is_unspecified())
}

/// Whether a well-formed IPv4 address can identify someone: `0.0.0.0/8` (this network,
/// unspecified), `127.0.0.0/8` (loopback) and the broadcast `255.255.255.255` are the same on
/// every machine and are not reported. Private ranges (10/8, 192.168/16) are: they map hosts
/// and people inside an organisation.
pub fn ipv4_personal(candidate: &str) -> bool {
    let first = candidate.split('.').next().unwrap_or("");
    !(first == "0" || first == "127" || candidate == "255.255.255.255")
}

/// [`ipv6`] on a regex candidate, which may have swallowed a colon of the sentence
/// (`2001:db8::1: reachable`): that single trailing colon is dropped.
fn ipv6_candidate(candidate: &str) -> Outcome {
    if ipv6(candidate) {
        return Outcome::Valid(candidate.len());
    }
    match candidate.strip_suffix(':') {
        Some(cut) if !cut.ends_with(':') && ipv6(cut) => Outcome::Valid(cut.len()),
        _ => Outcome::Invalid,
    }
}

/// International number in E.164 spirit: `+` then 8 to 15 digits in all (country code
/// included), separated by nothing, spaces, dots, hyphens or parentheses.
pub fn e164(candidate: &str) -> bool {
    let mut n = 0;
    for b in candidate.bytes() {
        match b {
            b'0'..=b'9' => n += 1,
            b'+' | b' ' | b'.' | b'-' | b'(' | b')' => {}
            _ => return false,
        }
    }
    (8..=15).contains(&n)
}

/// A random-looking token: at least one ASCII digit, one upper-case and one lower-case letter.
/// Guards prefixes like `sk-` against hyphenated words (`sk-this-is-a-long-phrase`).
pub fn secret_token(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
}

/// URL candidate: trailing sentence punctuation (`.,;:!?'"`) and closing brackets without an
/// opening partner in the URL are not part of it. What remains must have a host: at least
/// one letter or digit after `://` (or after `www.`).
pub fn url(candidate: &str) -> Outcome {
    let b = candidate.as_bytes();
    let mut end = b.len();
    loop {
        let Some(&last) = b[..end].last() else {
            return Outcome::Invalid;
        };
        let unbalanced = |open: u8, close: u8| {
            last == close
                && b[..end].iter().filter(|&&c| c == open).count()
                    < b[..end].iter().filter(|&&c| c == close).count()
        };
        if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'"')
            || unbalanced(b'(', b')')
            || unbalanced(b'[', b']')
            || unbalanced(b'{', b'}')
        {
            end -= 1;
        } else {
            break;
        }
    }
    let kept = &candidate[..end];
    let host = match kept.find("://") {
        Some(i) => &kept[i + 3..],
        None => kept.get(4..).unwrap_or(""),
    };
    if host
        .bytes()
        .take_while(|&c| c != b'/')
        .any(|c| c.is_ascii_alphanumeric())
    {
        Outcome::Valid(end)
    } else {
        Outcome::Invalid
    }
}

/// MAC address: `aa:bb:cc:dd:ee:ff` or `aa-bb-...` (one kind of separator) or `aabb.ccdd.eeff`;
/// not all octets the same (`00:00:...`, `ff:ff:...` are placeholders and broadcast).
pub fn mac(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    let (parts, width) = if b.len() == 17 {
        (6, 2)
    } else if b.len() == 14 {
        (3, 4)
    } else {
        return false;
    };
    let sep = b[width];
    if !matches!((sep, width), (b':' | b'-', 2) | (b'.', 4)) {
        return false;
    }
    let mut hex = [0u8; 12];
    let mut n = 0;
    for (i, &c) in b.iter().enumerate() {
        if (i + 1) % (width + 1) == 0 {
            if c != sep {
                return false;
            }
        } else if c.is_ascii_hexdigit() && n < 12 {
            hex[n] = c.to_ascii_lowercase();
            n += 1;
        } else {
            return false;
        }
    }
    n == 12 && parts * width == 12 && hex.chunks(2).any(|o| o != &hex[..2])
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Bitcoin address: legacy/P2SH Base58Check (25 bytes, version 0 or 5, double-SHA-256 check)
/// or segwit bech32 (`bc1q...`, witness v0) / bech32m (`bc1p...`, v1+).
pub fn btc_address(candidate: &str) -> bool {
    if candidate.len() > 3 && candidate[..3].eq_ignore_ascii_case("bc1") {
        return bech32_ok(candidate);
    }
    let mut bytes = [0u8; 25];
    for c in candidate.bytes() {
        let Some(v) = BASE58.iter().position(|&x| x == c) else {
            return false;
        };
        let mut carry = v as u32;
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return false;
        }
    }
    let leading_ones = candidate.bytes().take_while(|&c| c == b'1').count();
    let leading_zeros = bytes.iter().take_while(|&&b| b == 0).count();
    if leading_ones != leading_zeros.min(1) || !matches!(bytes[0], 0 | 5) {
        return false;
    }
    use sha2::{Digest, Sha256};
    let check = Sha256::digest(Sha256::digest(&bytes[..21]));
    check[..4] == bytes[21..]
}

fn bech32_ok(candidate: &str) -> bool {
    let lower = candidate.bytes().all(|c| !c.is_ascii_uppercase());
    let upper = candidate.bytes().all(|c| !c.is_ascii_lowercase());
    if !(lower || upper) || !(14..=74).contains(&candidate.len()) {
        return false;
    }
    let mut chk: u32 = 1;
    let mut step = |v: u8| {
        const GEN: [u32; 5] = [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ];
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    };
    // Human-readable part `bc`, expanded.
    for c in b"bc" {
        step(c >> 5);
    }
    step(0);
    for c in b"bc" {
        step(c & 31);
    }
    let mut version = None;
    for c in candidate[3..].bytes() {
        let Some(v) = BECH32.iter().position(|&x| x == c.to_ascii_lowercase()) else {
            return false;
        };
        version.get_or_insert(v);
        step(v as u8);
    }
    match version {
        Some(0) => chk == 1 && matches!(candidate.len(), 42 | 62),
        Some(1..=16) => chk == 0x2bc8_30a3,
        _ => false,
    }
}

/// Ethereum address: `0x` and 40 hex digits, mixing letters and digits, not one repeated digit.
/// (The EIP-55 mixed-case checksum needs Keccak-256, which is not checked here.)
pub fn eth_address(candidate: &str) -> bool {
    let Some(hex) = candidate.strip_prefix("0x") else {
        return false;
    };
    let h = hex.as_bytes();
    h.len() == 40
        && h.iter().all(u8::is_ascii_hexdigit)
        && h.iter().any(u8::is_ascii_digit)
        && h.iter().any(u8::is_ascii_alphabetic)
}

/// The value after `password=`, `"passwd": "`, `비밀번호:` ... Rejects what is code or a
/// placeholder rather than a password: type names and keywords (`String`, `&str`, `None`,
/// `null`, `true`), references (`&x`, `$VAR`, `${VAR}`, `%s`, `{}`, `<password>`), calls and
/// generics (brackets), identifier paths (`self.password`, `config.db.pass`), snake_case
/// identifiers (`db_password`), masks (`****`, `xxxx`). Limit: a real password written as a
/// snake_case word or with brackets is missed.
pub fn password_value(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    if b.len() < 4 || b.len() > 128 {
        return false;
    }
    if matches!(b[0], b'&' | b'$' | b'%' | b'\\' | b':' | b'=')
        || candidate.contains("***")
        || b.iter().any(|c| b"(){}<>[]`".contains(c))
        || b.iter().all(|&c| c == b[0])
    {
        return false;
    }
    const WORDS: &[&str] = &[
        "string",
        "str",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "option",
        "some",
        "self",
        "required",
        "optional",
        "password",
        "passwd",
        "secret",
        "redacted",
        "hidden",
        "masked",
        "empty",
        "string?",
        "varchar",
        "text",
        "bytes",
        "value",
        "example",
        "impl",
        "dyn",
        "mut",
        "ref",
        "****",
    ];
    if WORDS.iter().any(|w| candidate.eq_ignore_ascii_case(w)) {
        return false;
    }
    let ident_like = b
        .iter()
        .all(|&c| c.is_ascii_alphabetic() || c == b'_' || c == b'.' || c.is_ascii_digit());
    let has = |x: u8| b.contains(&x);
    if ident_like && has(b'.') && !b.iter().any(u8::is_ascii_digit) {
        return false; // config.db.password
    }
    if ident_like && has(b'_') && !b.iter().any(u8::is_ascii_uppercase) && b[0].is_ascii_lowercase()
    {
        return false; // db_password, get_password
    }
    if ident_like
        && has(b'_')
        && b.iter().all(|&c| !c.is_ascii_lowercase())
        && !b[0].is_ascii_digit()
    {
        return false; // DB_PASSWORD (an environment variable's name)
    }
    true
}

/// Prefixes of keys that have their own rules (JWT, OpenAI, Anthropic, Stripe, GitHub, GitLab,
/// Slack, AWS, Google): a generic rule leaves such values to them.
const KNOWN_KEY_PREFIXES: &[&str] = &[
    "eyJ",
    "sk-",
    "sk_live_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glrt-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "AKIA",
    "ASIA",
    "AIza",
    "sk_test_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "whsec_",
    "xapp-",
    "xoxe",
    "npm_",
    "hf_",
    "pypi-",
    "dop_v1_",
    "shpat_",
    "glsa_",
    "lin_api_",
    "gsk_",
];

/// [`password_value`] for a value written without quotes: it must also hold a digit or a
/// symbol. An `&` is part of the password (`password: EwO&lw83G3PI81` in YAML) unless a query
/// parameter follows it (`password=pa55word&user=kim`, `&amp;`): then the value ends there.
/// Limit: an unquoted all-letter password (`password=secret`) is missed, and so is the rest
/// of a password whose `&` is followed by `name=`.
pub fn password_bare(candidate: &str) -> Outcome {
    let value = &candidate[..query_parameter_start(candidate)];
    if password_value(value) && !value.bytes().all(|c| c.is_ascii_alphabetic()) {
        Outcome::Valid(value.len())
    } else {
        Outcome::Invalid
    }
}

/// Where the first `&name=` (or `&amp`) of a URL query starts in `s`; `s.len()` if nowhere.
fn query_parameter_start(s: &str) -> usize {
    for (i, _) in s.match_indices('&') {
        let rest = &s.as_bytes()[i + 1..];
        let name = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || b"_.-[]".contains(b))
            .count();
        if rest.starts_with(b"amp") && matches!(rest.get(3), None | Some(b';'))
            || name > 0 && rest.get(name) == Some(&b'=')
        {
            return i;
        }
    }
    s.len()
}

/// A bearer token or generic secret value: at least 16 characters with a letter and a digit,
/// and not a value with a prefix of [`KNOWN_KEY_PREFIXES`] (the rule for that kind reports
/// it, with its own subtype).
pub fn bearer_token(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    b.len() >= 16
        && !KNOWN_KEY_PREFIXES.iter().any(|p| candidate.starts_with(p))
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn luhn_known_numbers() {
        for ok in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "6200000000000005",
            "2223003122003222",
            "4222222222222",
            "0",
            "18",
        ] {
            assert!(luhn(&ds(ok)), "{ok} should pass Luhn");
        }
        for bad in [
            "4111111111111112",
            "1234567812345678",
            "9001011234568",
            "19",
        ] {
            assert!(!luhn(&ds(bad)), "{bad} should fail Luhn");
        }
        assert!(!luhn(&[]));
    }

    #[test]
    fn credit_card_issuers_and_separators() {
        for ok in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "2223003122003222",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "6200000000000005",
            "4222222222222",
        ] {
            assert_eq!(credit_card(ok), Outcome::Valid(ok.len()), "{ok}");
        }
        for bad in [
            "4111111111111112",    // Luhn
            "4111 1111-1111 1111", // mixed separators
            "7111111111111111",    // no issuer
            "5555555555554",       // Mastercard must be 16
            "411111111111111",     // Visa 15 digits
            "41111111111111111111",
            "9001011234568",
        ] {
            assert_eq!(credit_card(bad), Outcome::Invalid, "{bad}");
        }
        // A group absorbed from the following text is dropped again.
        assert_eq!(
            credit_card("4111 1111 1111 1111 123"),
            Outcome::Valid("4111 1111 1111 1111".len())
        );
    }

    #[test]
    fn kr_rrn_checks_date_and_checksum() {
        for ok in [
            "900101-1234568",
            "9001011234568",
            "850715-2345670",
            "020315-4123458",
            "771231-5123450",
        ] {
            assert_eq!(kr_rrn(ok), Outcome::Valid(ok.len()), "{ok}");
        }
        // Well formed, wrong check digit (post-2020 numbers look like this).
        assert_eq!(
            kr_rrn("900101-1234567"),
            Outcome::ChecksumFailed("900101-1234567".len())
        );
        for bad in [
            "900230-1234568", // 30 February
            "010229-3123456", // 2001 is not a leap year
            "901301-1234568", // month 13
            "900100-1234568", // day 0
            "900101-12345",   // short
            "900101_1234568",
            "90010-11234568",
        ] {
            assert_eq!(kr_rrn(bad), Outcome::Invalid, "{bad}");
        }
        // 2000-02-29 exists (leap year, century 2000 from the 3).
        assert_ne!(kr_rrn("000229-3123456"), Outcome::Invalid);
        // 1900-02-29 does not (1900 is not a leap year).
        assert_eq!(kr_rrn("000229-1123456"), Outcome::Invalid);
    }

    #[test]
    fn kr_brn_checksum() {
        for ok in ["123-45-67891", "220-81-62782", "104-81-12340", "2118654323"] {
            assert_eq!(kr_brn(ok), Outcome::Valid(ok.len()), "{ok}");
        }
        for bad in ["123-45-67890", "220-81-62781"] {
            assert_eq!(kr_brn(bad), Outcome::ChecksumFailed(bad.len()), "{bad}");
        }
        assert_eq!(kr_brn("123-45-6789"), Outcome::Invalid);
        assert_eq!(kr_brn("123-45-678901"), Outcome::Invalid);
    }

    #[test]
    fn us_ssn_ranges() {
        assert!(us_ssn("123-45-6789"));
        assert!(us_ssn("899-99-9999"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45-678",
        ] {
            assert!(!us_ssn(bad), "{bad}");
        }
    }

    #[test]
    fn iban_mod97_and_lengths() {
        for ok in [
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91 ABNA 0417 1643 00",
            "ES91 2100 0418 4502 0005 1332",
            "IT60 X054 2811 1010 0000 0123 456",
            "CH93 0076 2011 6238 5295 7",
            "BE68 5390 0754 7034",
        ] {
            assert_eq!(iban(ok), Outcome::Valid(ok.len()), "{ok}");
        }
        assert_eq!(
            iban("DE89 3704 0044 0532 0130 01"),
            Outcome::ChecksumFailed("DE89 3704 0044 0532 0130 01".len())
        );
        assert_eq!(iban("DE89 3704 0044 0532 0130"), Outcome::Invalid); // too short
        assert_eq!(iban("XX89 3704 0044 0532 0130 00"), Outcome::Invalid); // no such country
        assert_eq!(iban("DEAB 3704 0044 0532 0130 00"), Outcome::Invalid);
        // A greedy tail after a complete IBAN is cut at the token end.
        assert_eq!(
            iban("DE89 3704 0044 0532 0130 00 EUR"),
            Outcome::Valid("DE89 3704 0044 0532 0130 00".len())
        );
        assert_eq!(
            iban("DE89 3704 0044 0532 0130 00EU"),
            Outcome::Invalid,
            "a cut inside a group is no IBAN"
        );
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
        assert!(!iban_mod97(b"GB8"));
        assert_eq!(iban_length(b"KR"), None);
    }

    #[test]
    fn ipv4_octets() {
        for ok in [
            "192.168.0.1",
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "8.8.8.8",
        ] {
            assert!(ipv4(ok), "{ok}");
        }
        for bad in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.",
            "1.2.3.1000",
        ] {
            assert!(!ipv4(bad), "{bad}");
        }
    }

    #[test]
    fn ipv6_forms() {
        for ok in [
            "2001:db8::1",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::ffff:192.168.1.1",
            "2001:db8:0:0:1::1",
        ] {
            assert!(ipv6(ok), "{ok}");
        }
        for bad in [
            "12:30:45",
            "::1",
            "::",
            "Abc::Def",
            "00:1A:2B:3C:4D:5E",
            "2001:db8:::1",
            "12345::1",
            "C::C1",
            "a::b2",
            "0:0:0:0:0:0:0:1",
            "0:0:0:0:0:0:0:0",
        ] {
            assert!(!ipv6(bad), "{bad}");
        }
        assert!(ipv6("fe80::1"));
    }

    #[test]
    fn rrn_birth_year_in_the_future_is_no_date_of_birth() {
        let y = current_year();
        assert!((2025..2100).contains(&y), "{y}");
        // 2088-01-23 (7th digit 4: born in the 2000s) has not happened yet.
        assert_eq!(kr_rrn("8801234567893"), Outcome::Invalid);
        // 1988 (7th digit 2) is fine.
        assert_ne!(kr_rrn("880123-2567893"), Outcome::Invalid);
        assert_ne!(kr_rrn("200101-3234567"), Outcome::Invalid);
    }

    #[test]
    fn ipv4_non_personal_addresses() {
        for no in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
        ] {
            assert!(ipv4(no) && !ipv4_personal(no), "{no}");
            assert_eq!(Validator::Ipv4.check(no), Outcome::Invalid, "{no}");
        }
        for yes in ["10.0.0.1", "192.168.0.1", "8.8.8.8", "255.255.255.0"] {
            assert_eq!(
                Validator::Ipv4.check(yes),
                Outcome::Valid(yes.len()),
                "{yes}"
            );
        }
    }

    #[test]
    fn card_luhn_any_prefix_and_more_issuers() {
        assert_eq!(card_luhn("9410-6123-4567-8905"), Outcome::Valid(19));
        assert_eq!(card_luhn("9410-6123-4567-8906"), Outcome::Invalid);
        assert_eq!(card_luhn("4111"), Outcome::Invalid);
        assert_eq!(card_luhn("4111-1111-1111-1111"), Outcome::Invalid);
        for ok in [
            "30569309025904",
            "6759649826438453",
            "213130000000008",
            "4111.1111.1111.1111",
        ] {
            assert!(matches!(credit_card(ok), Outcome::Valid(_)), "{ok}");
        }
        assert_eq!(credit_card("4111.1111-1111.1111"), Outcome::Invalid);
    }

    #[test]
    fn e164_digit_counts() {
        assert!(e164("+82 10-2345-6789"));
        assert!(e164("+1 (415) 555-2671"));
        assert!(e164("+442079460958"));
        assert!(!e164("+1 234"));
        assert!(!e164("+1234567890123456"));
        assert!(!e164("+82 10/2345/6789"));
    }

    #[test]
    fn secret_token_needs_mixed_characters() {
        assert!(secret_token("sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv"));
        assert!(!secret_token("sk-this-is-a-very-long-hyphenated-phrase"));
        assert!(!secret_token("sk-alllower-abcdefghijklmnop"));
        assert!(!secret_token("ABCDEFGHIJ1234567890"));
    }

    #[test]
    fn kr_frn_checks_shape_and_its_own_checksum() {
        for ok in [
            "771231-5123452",
            "9001015234561",
            "030315-7123455",
            "850505-6123459",
        ] {
            assert_eq!(kr_frn(ok), Outcome::Valid(ok.len()), "{ok}");
        }
        // Valid as a resident number, wrong as a foreigner number.
        assert_eq!(kr_rrn("771231-5123450"), Outcome::Valid(14));
        assert_eq!(kr_frn("771231-5123450"), Outcome::ChecksumFailed(14));
        for bad in [
            "900101-1234568",
            "771331-5123452",
            "771231-9123452",
            "771231-512345",
        ] {
            assert_eq!(kr_frn(bad), Outcome::Invalid, "{bad}");
        }
    }

    #[test]
    fn kr_crn_checksum_and_deferral() {
        // 130111-0006246 is a published corporate number (weights 1,2,... sum 34 -> 6).
        for ok in [
            "130111-0006246",
            "110111-0123458",
            "134511-0004561",
            "1247119876547",
        ] {
            assert_eq!(kr_crn(ok, true), Outcome::Valid(ok.len()), "{ok}");
        }
        assert_eq!(kr_crn("110111-0123456", true), Outcome::ChecksumFailed(14));
        // Shaped like a resident number (2011-01-11, digit 1): deferred, unless told not to.
        assert_eq!(kr_crn("110111-1234569", true), Outcome::Invalid);
        assert_eq!(kr_crn("110111-1234569", false), Outcome::Valid(14));
        assert_eq!(kr_crn("110111-123456", false), Outcome::Invalid);
    }

    #[test]
    fn url_trims_punctuation_and_unbalanced_brackets() {
        fn cut(s: &str) -> Option<&str> {
            match url(s) {
                Outcome::Valid(n) => Some(&s[..n]),
                _ => None,
            }
        }
        assert_eq!(cut("https://example.com/a."), Some("https://example.com/a"));
        assert_eq!(
            cut("https://example.com/a),"),
            Some("https://example.com/a")
        );
        assert_eq!(
            cut("https://en.wikipedia.org/wiki/Foo_(bar)"),
            Some("https://en.wikipedia.org/wiki/Foo_(bar)")
        );
        assert_eq!(cut("www.example.org'"), Some("www.example.org"));
        assert_eq!(cut("http://"), None);
        assert_eq!(cut("http://..."), None);
    }

    #[test]
    fn mac_forms() {
        for ok in ["00:1A:2B:3C:4D:5E", "a4-5e-60-d2-1f-07", "0011.22aa.bbcc"] {
            assert!(mac(ok), "{ok}");
        }
        for bad in [
            "00:00:00:00:00:00",
            "FF:FF:FF:FF:FF:FF",
            "00:1A-2B:3C:4D:5E",
            "00:1A:2B:3C:4D:5E:6F",
            "0011:22aa:bbcc",
            "00:1G:2B:3C:4D:5E",
        ] {
            assert!(!mac(bad), "{bad}");
        }
    }

    #[test]
    fn btc_addresses() {
        for ok in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "34SehTQKttTQicF6QwHKPKkbZoZZqnzsjb",
            "bc1qs4l9z6grv7xss3e9hlmxt3q8jd9mtg4vn6el4g",
            "BC1QS4L9Z6GRV7XSS3E9HLMXT3Q8JD9MTG4VN6EL4G",
            "bc1p7rau4wkg3k2eczeua97v792k73kmzcdfzglpdq8m0ye0vfemlmmqw3qev2",
        ] {
            assert!(btc_address(ok), "{ok}");
        }
        for bad in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
            "bc1qs4l9z6grv7xss3e9hlmxt3q8jd9mtg4vn6el4h",
            "Bc1qs4l9z6grv7xss3e9hlmxt3q8jd9mtg4vn6el4g",
            "1111111111111111111111111111111111",
            "10zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        ] {
            assert!(!btc_address(bad), "{bad}");
        }
    }

    #[test]
    fn eth_addresses() {
        assert!(eth_address("0x8f9c372b7488a0a35f04d1f783da83763980cac0"));
        assert!(!eth_address("0x0000000000000000000000000000000000000000"));
        assert!(!eth_address("0x8f9c372b7488a0a35f04d1f783da83763980cac"));
        assert!(!eth_address("8f9c372b7488a0a35f04d1f783da83763980cac0"));
    }

    #[test]
    fn bare_passwords_keep_an_ampersand_unless_a_query_parameter_follows() {
        for (value, want) in [
            ("EwO&lw83G3PI81", Outcome::Valid(14)),
            ("pa55word&user=kim", Outcome::Valid(8)),
            ("pa55word&amp", Outcome::Valid(8)),
            ("pa55&x", Outcome::Valid(6)),
            ("abc&user=kim", Outcome::Invalid),
            ("hunter2!", Outcome::Valid(8)),
            ("password", Outcome::Invalid),
        ] {
            assert_eq!(password_bare(value), want, "{value}");
        }
    }

    #[test]
    fn password_values_exclude_code_and_placeholders() {
        for ok in [
            "hunter2!",
            "S3cr3t-Pa55",
            "qwer1234!@",
            "abcd1234",
            "Temp#2024",
            "rootpw123",
        ] {
            assert!(password_value(ok), "{ok}");
        }
        for bad in [
            "&str",
            "String",
            "None",
            "null",
            "$1",
            "${DB_PASSWORD}",
            "********",
            "xxxx",
            "{}",
            "self.password",
            "config.db.password",
            "get_password",
            "DB_PASSWORD",
            "impl",
            "<redacted>",
            "abc",
        ] {
            assert!(!password_value(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens_leave_known_keys_to_their_rules() {
        assert!(bearer_token("8f14e45fceea167a5a36dedd4bea2543"));
        assert!(bearer_token("ya29.a0AfH6SMBexampleEXAMPLE1234567890"));
        assert!(!bearer_token("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x"));
        assert!(!bearer_token(
            "sk-EXAMPLEe1f8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiV"
        ));
        assert!(!bearer_token("tokenizationrules"));
        assert!(!bearer_token("short1"));
    }

    #[test]
    fn validator_ids_round_trip() {
        for v in Validator::ALL {
            assert_eq!(v.as_str().parse::<Validator>().unwrap(), v);
        }
        assert!("luhn".parse::<Validator>().is_err());
        assert_eq!(
            Validator::Ipv4.check("1.2.3.4"),
            Outcome::Valid(7),
            "check dispatches"
        );
        assert_eq!(Validator::UsSsn.check("666-12-3456"), Outcome::Invalid);
        assert_eq!(Validator::Ipv6.check("2001:db8::1:"), Outcome::Valid(11));
        assert_eq!(Validator::Ipv6.check("2001:db8::"), Outcome::Valid(10));
        assert_eq!(Validator::Ipv6.check("12:30:45:"), Outcome::Invalid);
    }
}
