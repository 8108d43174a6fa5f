//! Whatever the kernel could send on the rtnetlink socket: the message
//! and attribute walkers and the address parser must never panic, and an
//! address parsed from an `RTM_NEWADDR` payload is emitted by
//! `address_message` and parsed back the same (parse -> emit -> parse).
#![no_main]

use cloudy::runtime::netlink::{address_message, attributes, error_code, messages, parse_address, RTM_NEWADDR};
use libfuzzer_sys::fuzz_target;

/// Netlink header bytes before a message's payload.
const NLMSG_HDRLEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    for (_, _, payload) in messages(data).take(64) {
        let _ = error_code(payload);
        let _ = attributes(payload).take(64).count();
        check_address(payload);
    }
    check_address(data);
});

fn check_address(payload: &[u8]) {
    let Some((index, cidr)) = parse_address(payload) else { return };
    // A prefix longer than the family allows is refused, never emitted.
    let Ok(msg) = address_message(RTM_NEWADDR, 0, index, &cidr) else { return };
    assert_eq!(parse_address(&msg[NLMSG_HDRLEN..]), Some((index, cidr)));
    let (_, _, inner) = messages(&msg).next().expect("one message");
    assert_eq!(inner, &msg[NLMSG_HDRLEN..]);
}
