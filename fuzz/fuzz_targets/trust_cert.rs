//! Member certificates and revocation lists (`trust::cert`,
//! `trust::revocation`) on arbitrary bytes; the first byte chooses:
//! - even: as a certificate, binary and (from byte 1 on) as text;
//! - odd: as a revocation list, binary and as text.
//! What parses emits the same bytes (the encodings are canonical, so a
//! signature is checked over exactly what arrived), and nothing verifies
//! under the fixed authority unless it was signed by it (no input can be:
//! the seeds hold genuine ones, changed by the fuzzer).
#![no_main]

use cloudy::trust::{AuthorityKey, Certificate, RevocationList};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let authority = AuthorityKey::from_seed(&[1; 32]).public();
    let text = String::from_utf8_lossy(rest);
    if mode % 2 == 0 {
        if let Ok(c) = Certificate::parse(rest) {
            assert_eq!(c.to_bytes().unwrap(), rest);
            let _ = c.verify(&authority, "guifi", NOW);
        }
        if let Ok(c) = Certificate::from_text(&text) {
            let back = Certificate::from_text(&c.to_text().unwrap()).unwrap();
            assert_eq!(back, c);
        }
    } else {
        if let Ok(l) = RevocationList::parse(rest) {
            assert_eq!(l.to_bytes().unwrap(), rest);
            let _ = l.verify(&authority, "guifi");
            let _ = l.contains(&[0; 32]);
        }
        if let Ok(l) = RevocationList::from_text(&text) {
            let back = RevocationList::from_text(&l.to_text().unwrap()).unwrap();
            assert_eq!(back, l);
        }
    }
});
