//! The console under abuse (issue 9, item 6), against a real daemon (root;
//! skip otherwise): more clients than the daemon has console slots, each
//! trickling one byte every 2 s, reconnecting whenever dropped; garbage and
//! oversized requests on the side. `cloudy status` must still answer within
//! a few seconds (possibly after "daemon busy, retrying"), the hostile
//! clients must get clear answers and lose their slots at the request
//! deadline, and the daemon must keep serving. Every loop is bounded in
//! count and time; the net (namespaces, daemon, files) goes on drop.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudy_tests::*;

/// More than the daemon's console slots (limits::MAX_CONSOLE_CLIENTS, 8).
const TRICKLERS: usize = 12;
/// One byte per slow client this often: the attack of the issue.
const TRICKLE_EVERY: Duration = Duration::from_secs(2);
/// The attacker looks at its connections this often.
const TICK: Duration = Duration::from_millis(250);
/// Connections the attacker opens at most, in all.
const MAX_CONNECTS: usize = 400;
/// The attack stops after this long even if the test does not stop it.
const ATTACK_FOR: Duration = Duration::from_secs(20);
/// `cloudy status` must answer within this under attack (its busy retries
/// take 2.5 s at most).
const ANSWER_WITHIN: Duration = Duration::from_secs(4);
/// The daemon's request deadline (limits::CONSOLE_REQUEST_TIMEOUT) plus
/// slack for the attacker's tick and a loaded machine.
const HELD_AT_MOST: Duration = Duration::from_millis(3500);

/// What one daemon answer frame was, as far as these tests care.
#[derive(Debug, PartialEq)]
enum Answer {
    Error(String),
    Busy,
    /// Another variant, by index.
    Other(u8),
}

/// Decodes a frame body (postcard: variant index, then fields).
fn parse_answer(body: &[u8]) -> Answer {
    match body.first() {
        // Error(String): a varint length, then UTF-8 (short ones here).
        Some(3) => {
            let mut len = 0usize;
            let mut i = 1;
            for shift in [0, 7, 14] {
                let Some(&b) = body.get(i) else { break };
                i += 1;
                len |= usize::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let text = body.get(i..i + len).unwrap_or_default();
            Answer::Error(String::from_utf8_lossy(text).into_owned())
        }
        Some(6) if body.len() == 1 => Answer::Busy,
        Some(&n) => Answer::Other(n),
        None => Answer::Other(0xff),
    }
}

/// The frames at the front of `bytes` (a partial one at the end is left).
fn parse_answers(bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(&[a, b, c, d]) = rest.get(..4) {
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let Some(body) = rest.get(4..4 + len) else {
            break;
        };
        out.push(parse_answer(body));
        rest = &rest[4 + len..];
    }
    out
}

/// Sends `bytes` on a new connection and reads until the daemon closes
/// (at most 5 s); returns the answers it wrote. Asks again, as `cloudy`
/// does, while it is told busy (all slots taken and the daemon looked
/// before the bytes arrived), at most 10 times.
fn one_shot(sock: &Path, bytes: &[u8]) -> Vec<Answer> {
    for _ in 0..10 {
        let answers = one_try(sock, bytes);
        if answers != [Answer::Busy] {
            return answers;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    vec![Answer::Busy]
}

fn one_try(sock: &Path, bytes: &[u8]) -> Vec<Answer> {
    let mut s = UnixStream::connect(sock).expect("connect to the console");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The daemon may close before taking all of it; the answer still comes.
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the answer, or the timeout: what came is it.
            Err(_) => break,
        }
    }
    parse_answers(&got)
}

/// One slow connection of the attacker.
struct Slow {
    stream: UnixStream,
    opened: Instant,
    next_byte: Instant,
    sent: usize,
    received: Vec<u8>,
}

/// What the attacker saw.
#[derive(Debug, Default)]
struct Attack {
    connects: usize,
    /// The daemon closed a connection that had been admitted: how long it
    /// had been open.
    dropped_after: Vec<Duration>,
    /// Every answer the daemon wrote to the slow clients.
    answers: Vec<Answer>,
    /// Longest a connection stayed open (including those still open at
    /// the end).
    longest: Duration,
}

/// Keeps `TRICKLERS` connections open, each writing the next byte of a
/// `status` request every `TRICKLE_EVERY` (it would be complete after
/// five: 8 s), reconnecting at the next tick when the daemon drops one.
fn trickle(sock: PathBuf, stop: Arc<AtomicBool>) -> Attack {
    const REQUEST: [u8; 5] = [0, 0, 0, 1, 0];
    let start = Instant::now();
    let mut attack = Attack::default();
    let mut conns: Vec<Option<Slow>> = (0..TRICKLERS).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < ATTACK_FOR {
        let now = Instant::now();
        for slot in &mut conns {
            if slot.is_none() && attack.connects < MAX_CONNECTS {
                attack.connects += 1;
                if let Ok(stream) = UnixStream::connect(&sock) {
                    stream.set_nonblocking(true).expect("nonblocking");
                    *slot = Some(Slow {
                        stream,
                        opened: now,
                        next_byte: now + TRICKLE_EVERY,
                        sent: 0,
                        received: Vec::new(),
                    });
                }
            }
            let Some(c) = slot else { continue };
            let mut closed = false;
            let mut buf = [0u8; 256];
            // Bounded: the daemon writes one short answer, then closes.
            for _ in 0..8 {
                match c.stream.read(&mut buf) {
                    Ok(0) => closed = true,
                    Ok(n) => {
                        c.received.extend_from_slice(&buf[..n]);
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => closed = true,
                }
                break;
            }
            if !closed && now >= c.next_byte {
                let byte = REQUEST[c.sent % REQUEST.len()];
                match c.stream.write(&[byte]) {
                    Ok(_) => c.sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => closed = true,
                }
                c.next_byte = now + TRICKLE_EVERY;
            }
            let open = now.duration_since(c.opened);
            attack.longest = attack.longest.max(open);
            if closed {
                let answers = parse_answers(&c.received);
                // A connection told Busy at once never held a slot.
                if answers != [Answer::Busy] {
                    attack.dropped_after.push(open);
                }
                attack.answers.extend(answers);
                *slot = None;
            }
        }
        std::thread::sleep(TICK);
    }
    attack
}

/// `cloudy --json status`, timed; panics unless it answers in time.
fn status_in_time(net: &Net, node: &Node, when: &str) -> (Duration, String) {
    let t = Instant::now();
    let r = net.cloudy(node, &["--json", "status"]);
    let took = t.elapsed();
    assert!(r.ok(), "status {when} failed after {took:?}: {r}");
    assert!(
        took <= ANSWER_WITHIN,
        "status {when} took {took:?}, want at most {ANSWER_WITHIN:?}: {r}"
    );
    let v: Value = serde_json::from_str(&r.stdout).expect("status JSON");
    assert_eq!(v["name"], node.name.as_str(), "{v}");
    for line in r.stderr.lines() {
        assert_eq!(line, "cloudy: daemon busy, retrying", "stderr: {r}");
    }
    (took, r.stderr)
}

#[test]
fn slow_clients_garbage_and_oversize() {
    let Some(mut net) = Net::new("slow_clients_garbage_and_oversize") else {
        return;
    };
    let lan = net.segment();
    let a = net.node("box1", lan);
    net.configure(&a, &[]);
    net.start(&a);

    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (sock, stop) = (a.sock.clone(), stop.clone());
        std::thread::spawn(move || trickle(sock, stop))
    };
    // Let the tricklers take every slot.
    std::thread::sleep(Duration::from_millis(600));

    let mut took = Vec::new();
    let mut retries = 0;
    // Spread over two request deadlines: while the first tricklers hold
    // the slots, around their drop, and while their successors hold them.
    for i in 0..6 {
        let (t, stderr) = status_in_time(&net, &a, &format!("#{i} under attack"));
        took.push(t);
        retries += stderr.lines().count();
        std::thread::sleep(Duration::from_millis(700));
    }

    // Garbage: a frame whose body is no request.
    let answers = one_shot(&a.sock, &[0, 0, 0, 2, 0x77, 0x01]);
    assert!(
        matches!(answers.as_slice(), [Answer::Error(m)] if m.starts_with("bad request")),
        "garbage got {answers:?}"
    );
    // Oversized: a length prefix far beyond the limit, then some bytes.
    let mut huge = vec![0x7f, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0xaa; 1000]);
    let answers = one_shot(&a.sock, &huge);
    assert_eq!(
        answers,
        [Answer::Error(
            "message of 2147483647 bytes exceeds the limit of 16384".into()
        )],
        "oversized request"
    );
    // Just over the limit, body and all (16 KiB of junk).
    let mut over = 16385u32.to_be_bytes().to_vec();
    over.resize(4 + 16385, 0x55);
    let answers = one_shot(&a.sock, &over);
    assert_eq!(
        answers,
        [Answer::Error(
            "message of 16385 bytes exceeds the limit of 16384".into()
        )],
        "request one byte over the limit"
    );
    // None of that disturbed anybody.
    let (t, _) = status_in_time(&net, &a, "after garbage");
    took.push(t);

    stop.store(true, Ordering::Relaxed);
    let attack = attacker.join().expect("attacker thread");
    eprintln!(
        "console abuse: {} connections, {} dropped after {:?}..{:?}, longest open {:?}; \
         status took {took:?} ({retries} busy retries)",
        attack.connects,
        attack.dropped_after.len(),
        attack.dropped_after.iter().min(),
        attack.dropped_after.iter().max(),
        attack.longest,
    );
    assert!(
        attack.longest <= HELD_AT_MOST,
        "a trickling client held its connection for {:?}",
        attack.longest
    );
    assert!(
        attack.dropped_after.len() >= 8,
        "slots never freed: {attack:?}"
    );
    // Dropped ones were told why (or busy), nothing else.
    assert!(
        attack
            .answers
            .iter()
            .any(|a| *a == Answer::Error("no complete request in time".into())),
        "{attack:?}"
    );
    for ans in &attack.answers {
        assert!(
            matches!(ans, Answer::Busy)
                || *ans == Answer::Error("no complete request in time".into()),
            "a slow client was told {ans:?}"
        );
    }
    assert!(net.running(&a), "the daemon died");
    status_in_time(&net, &a, "after the attack");
}
