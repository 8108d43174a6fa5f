//! Store capabilities (`store::cap`) on arbitrary text: what parses as a
//! read or verify capability prints back to text that parses equal, and
//! a read capability's verify capability parses as one too. Nothing
//! panics on any input.
#![no_main]

use cloudy::store::cap::{ReadCap, VerifyCap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = ReadCap::parse(&text) {
        assert_eq!(ReadCap::parse(&r.to_text()).unwrap(), r);
        let v = r.verify_cap();
        assert_eq!(VerifyCap::parse(&v.to_text()).unwrap(), v);
        assert_eq!(VerifyCap::parse(&text).unwrap(), v);
    }
    if let Ok(v) = VerifyCap::parse(&text) {
        assert_eq!(VerifyCap::parse(&v.to_text()).unwrap(), v);
    }
});
