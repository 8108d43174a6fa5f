//! The join protocol (`trust::invite`) on arbitrary bytes; the first input
//! byte chooses where the rest goes:
//! - 0: as token text: a token that parses prints back as the same text;
//! - 1: as a datagram to the inviter (a fixed issuer with one pending
//!   invitation, id 7, secret 5…5): nothing may panic, and only a request
//!   made with that secret may be admitted;
//! - 2: as the inviter's answer to a joiner holding that invitation's
//!   token: nothing may panic, nothing forged may be accepted.
//! Everything is made afresh per input, so runs are deterministic apart
//! from the joiner's ephemeral key (which no input can know).
#![no_main]

use cloudy::keys::public_key_of;
use cloudy::time::Instant;
use cloudy::trust::invite::{Invites, Issuer, JoinClient, Token, MAX_RESPONSE_LEN};
use cloudy::trust::{AuthorityKey, Certificate};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;
const INVITER: [u8; 32] = [3; 32];
const SECRET: [u8; 32] = [5; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let authority = AuthorityKey::from_seed(&[1; 32]);
    let key = public_key_of(&INVITER);
    let mut invites = Invites::new();
    let endpoints = ["192.0.2.1:6556".parse().unwrap()];
    let addresses = vec![("10.99.0.2".parse().unwrap(), 24)];
    let token = invites
        .create_with(7, SECRET, None, addresses, 3600, &endpoints, key, NOW)
        .unwrap();
    match mode {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(t) = Token::parse(&text) {
                assert_eq!(t.to_text().as_deref(), Some(text.trim()));
            }
        }
        1 => {
            let cert = Certificate::issue(&authority, "box1", "fuzz", key, NOW, 86_400, vec![])
                .unwrap();
            let issuer = Issuer {
                authority: &authority,
                cloud: "fuzz",
                private: &INVITER,
                certificate: &cert,
                lifetime: 86_400,
            };
            let mut out = [0u8; MAX_RESPONSE_LEN];
            let (n, r) = invites.handle_request(rest, &issuer, NOW, Instant::ZERO, &mut out);
            assert!(n <= out.len());
            assert_eq!(r.is_ok(), n > 9, "only an admission gets a long answer");
        }
        _ => {
            let (mut client, _) = JoinClient::start(&token, &[9; 32], Some("fuzz")).unwrap();
            assert!(client.finish(rest, NOW).is_err(), "no input knows the ephemeral key");
        }
    }
});
