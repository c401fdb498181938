//! Identifiers with check characters: the unified social credit code (GB 32100-2015) and the
//! resident ID number (GB 11643). A bad one is refused with the reason, before anything is stored.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a unified social credit code has 18 characters, this has {0}")]
    UsccLength(usize),
    #[error("{0:?} is not allowed in a unified social credit code (no I, O, S, V, Z)")]
    UsccCharacter(char),
    #[error("the check character should be {expected:?}, not {found:?}")]
    UsccCheck { expected: char, found: char },
    #[error("a resident ID number has 18 characters (17 digits and a check character), this has {0}")]
    ResidentIdLength(usize),
    #[error("a resident ID number has digits in its first 17 places")]
    ResidentIdDigits,
    #[error("{0} is not a birth date")]
    ResidentIdBirth(String),
    #[error("the check character should be {expected:?}, not {found:?}")]
    ResidentIdCheck { expected: char, found: char },
}

const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Checks a unified social credit code; returns it upper-cased.
pub fn uscc(code: &str) -> Result<String, IdError> {
    let code = code.trim().to_ascii_uppercase();
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(IdError::UsccLength(chars.len()));
    }
    let value = |c: char| USCC_CHARSET.find(c).map(|i| i as u32).ok_or(IdError::UsccCharacter(c));
    let mut sum = 0;
    for (c, w) in chars.iter().zip(USCC_WEIGHTS) {
        sum += value(*c)? * w;
    }
    let expected = USCC_CHARSET.as_bytes()[((31 - sum % 31) % 31) as usize] as char;
    value(chars[17])?;
    if chars[17] != expected {
        return Err(IdError::UsccCheck { expected, found: chars[17] });
    }
    Ok(code)
}

/// The check character of a code's first 17 characters (all from the code's character set).
fn uscc_check(body: &str) -> Option<char> {
    let mut sum = 0;
    for (c, w) in body.chars().zip(USCC_WEIGHTS) {
        sum += USCC_CHARSET.find(c)? as u32 * w;
    }
    Some(USCC_CHARSET.as_bytes()[((31 - sum % 31) % 31) as usize] as char)
}

/// A new enterprise's unified social credit code (GB 32100): registration authority 9 (market
/// regulation), kind 1 (enterprise), the six-digit division code, the organisation code — `MA`
/// and `serial` in six characters of the code's set, with its GB 11714 check character — and
/// the check character. `None` for a division that is not six digits or a serial beyond 31^6.
pub fn new_uscc(division: &str, serial: u64) -> Option<String> {
    if division.len() != 6 || !division.chars().all(|c| c.is_ascii_digit()) || serial >= 31u64.pow(6) {
        return None;
    }
    let set = USCC_CHARSET.as_bytes();
    let mut digits = [b'0'; 6];
    let mut n = serial;
    for d in digits.iter_mut().rev() {
        *d = set[(n % 31) as usize];
        n /= 31;
    }
    let org: String = format!("MA{}", String::from_utf8_lossy(&digits));
    // GB 11714: digits count as themselves, letters from A = 10.
    let value = |c: char| c.to_digit(36).unwrap_or(0);
    let sum: u32 = org.chars().zip([3, 7, 9, 10, 5, 8, 4, 2]).map(|(c, w)| value(c) * w).sum();
    let org_check = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('0'),
    };
    let body = format!("91{division}{org}{org_check}");
    let check = uscc_check(&body)?;
    Some(format!("{body}{check}"))
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Checks a resident ID number (birth date and check character); returns it upper-cased.
pub fn resident_id(id: &str) -> Result<String, IdError> {
    let id = id.trim().to_ascii_uppercase();
    let chars: Vec<char> = id.chars().collect();
    if chars.len() != 18 {
        return Err(IdError::ResidentIdLength(chars.len()));
    }
    let digits: Vec<u32> = chars[..17].iter().map(|c| c.to_digit(10)).collect::<Option<_>>().ok_or(IdError::ResidentIdDigits)?;
    let birth: String = chars[6..14].iter().collect();
    if NaiveDate::parse_from_str(&birth, "%Y%m%d").is_err() {
        return Err(IdError::ResidentIdBirth(birth));
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    let expected = "10X98765432".as_bytes()[(sum % 11) as usize] as char;
    if chars[17] != expected {
        return Err(IdError::ResidentIdCheck { expected, found: chars[17] });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_carry_valid_check_characters() {
        for serial in [0, 1, 30, 31, 12_345, 887_503_680] {
            let code = new_uscc("310101", serial).unwrap();
            assert_eq!(uscc(&code).as_deref(), Ok(code.as_str()), "{code}");
            assert!(code.starts_with("91310101MA"), "{code}");
        }
        assert_ne!(new_uscc("310101", 1), new_uscc("310101", 2));
        assert_eq!(new_uscc("31010", 1), None);
        assert_eq!(new_uscc("310101", 31u64.pow(6)), None);
    }

    #[test]
    fn unified_social_credit_codes_from_the_standard() {
        for ok in ["91310110666007217T", "91310115591693856A", "9135052155323005XL", "91350100M000100Y43", "91110000600037341L"] {
            assert_eq!(uscc(ok).as_deref(), Ok(ok));
        }
        assert_eq!(uscc("91310110666007217t").as_deref(), Ok("91310110666007217T"), "lower case is accepted");
        assert_eq!(uscc("91310110666007217A"), Err(IdError::UsccCheck { expected: 'T', found: 'A' }));
        assert_eq!(uscc("9131011066600721"), Err(IdError::UsccLength(16)));
        assert_eq!(uscc("9131011066600721IT"), Err(IdError::UsccCharacter('I')));
        // A remainder of 0 gives the check character '0'.
        let mut body = String::from("91310000000000000");
        for c in USCC_CHARSET.chars() {
            body.replace_range(16..17, &c.to_string());
            let sum: u32 = body.chars().zip(USCC_WEIGHTS).map(|(c, w)| USCC_CHARSET.find(c).unwrap() as u32 * w).sum();
            if sum % 31 == 0 {
                assert_eq!(uscc(&format!("{body}0")).as_deref(), Ok(format!("{body}0").as_str()));
                return;
            }
        }
        panic!("no remainder-0 body found");
    }

    #[test]
    fn resident_id_numbers_from_the_standard() {
        assert_eq!(resident_id("11010519491231002X").as_deref(), Ok("11010519491231002X"));
        assert_eq!(resident_id("440524188001010014").as_deref(), Ok("440524188001010014"));
        assert_eq!(resident_id("110105194912310021"), Err(IdError::ResidentIdCheck { expected: 'X', found: '1' }));
        assert_eq!(resident_id("110105194913310020"), Err(IdError::ResidentIdBirth("19491331".into())));
        assert_eq!(resident_id("11010519491231002"), Err(IdError::ResidentIdLength(17)));
    }
}
