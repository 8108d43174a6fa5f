//! `cloudy put | get | check | verify-cap | store`: the store's commands
//! (docs/store.md). The command runs the client itself (`store::client`):
//! it asks the local daemon only which storage boxes the micro cloud has
//! (`_cloudy-store._tcp` of members, with their overlay RTT) and for this
//! box's store counters; file data never passes through the daemon.
//!
//! Output: the capability on stdout (a put), the file on stdout or in
//! `-o FILE` (written to `FILE.part`, renamed only once every byte
//! checked out), progress on stderr when it is a terminal, `--json` for
//! scripts.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::cli::{Cli, Failure};
use super::proto::{Request, Response, StoreInfo};
use crate::store::cap::{ReadCap, VerifyCap};
use crate::store::client::{self, Candidate, PutOptions};

/// What a store command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCommand {
    /// `put FILE|-`.
    Put { input: String },
    /// `get CAP [-o FILE]`.
    Get {
        cap: String,
        output: Option<PathBuf>,
    },
    /// `check CAP [--repair]`.
    Check { cap: String, repair: bool },
    /// `verify-cap CAP`.
    VerifyCap { cap: String },
    /// `store`: this box's store.
    Info,
}

fn err(m: impl Into<String>) -> Failure {
    Failure::Error(m.into())
}

/// The overlay device store connections are bound to.
fn device(cfg: &crate::config::Config) -> String {
    match cfg.agent.mode {
        crate::config::Mode::Tap => cfg.agent.interface.clone(),
        crate::config::Mode::Raw => cfg.agent.raw_device.clone().unwrap_or_default(),
    }
}

/// Storage boxes of members (and this box), from the daemon's browse.
fn candidates(cli: &Cli) -> Result<Vec<Candidate>, Failure> {
    let request = Request::Search {
        service_type: Some(crate::dnssd::STORE_SERVICE_TYPE.into()),
        host: None,
        all: false,
    };
    let mut answer = super::cli::ask(cli, &request)?;
    if let Some(ms) = answer.retry_after_ms() {
        let wait = u64::from(ms.min(super::cli::SEARCH_MAX_WAIT_MS));
        std::thread::sleep(std::time::Duration::from_millis(wait));
        answer = super::cli::ask(cli, &request)?;
    }
    let Response::Services { services, .. } = answer else {
        return Err(err("unexpected answer from the daemon to a search"));
    };
    Ok(services
        .into_iter()
        .filter_map(|s| {
            // Members only: a box the overlay does not know has no RTT.
            let rtt_us = s.rtt_us?;
            let addr = s.address?;
            Some(Candidate {
                name: s.instance,
                addr: std::net::SocketAddr::new(addr, s.port),
                rtt_us,
            })
        })
        .collect())
}

fn load_config(cli: &Cli) -> Result<crate::config::Config, Failure> {
    crate::config::uci::load(&cli.config).map_err(|e| Failure::Plain(e.to_string()))
}

/// Progress on stderr, at most every 1 % (only on a terminal).
fn progress(total: u64, what: &'static str) -> impl FnMut(u64) {
    let tty = std::io::stderr().is_terminal();
    let mut last = 0u64;
    move |done| {
        if !tty || total == 0 {
            return;
        }
        let pct = done * 100 / total;
        if pct != last || done == total {
            last = pct;
            let _ = write!(
                std::io::stderr().lock(),
                "\r{what} {pct:3}% ({done} of {total} bytes){}",
                if done == total { "\n" } else { "" }
            );
        }
    }
}

fn json_str(s: &str) -> String {
    super::format::json_string(s)
}

/// Run a store command, writing what it prints to `out`.
pub fn run(cli: &Cli, command: &StoreCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        StoreCommand::VerifyCap { cap } => {
            let v = VerifyCap::parse(cap).map_err(|e| err(e.to_string()))?;
            let _ = writeln!(out, "{}", v.to_text());
            Ok(())
        }
        StoreCommand::Info => info(cli, out),
        StoreCommand::Put { input } => put(cli, input, out),
        StoreCommand::Get { cap, output } => get(cli, cap, output.as_deref(), out),
        StoreCommand::Check { cap, repair } => check(cli, cap, *repair, out),
    }
}

fn put(cli: &Cli, input: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = load_config(cli)?;
    let s = cfg.store_or_client();
    let opts = PutOptions {
        needed: s.shares_needed,
        total: s.shares_total,
        happy: s.shares_happy,
        device: device(&cfg),
    };
    // The size is needed before the first block (it is in every share's
    // header): a file, or stdin redirected from a file.
    let (mut reader, size): (Box<dyn std::io::Read>, u64) = if input == "-" {
        use std::os::fd::AsFd;
        let stdin = std::io::stdin();
        let meta = stdin
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .and_then(|f| f.metadata())
            .map_err(|e| err(format!("stdin: {e}")))?;
        if !meta.is_file() {
            return Err(err(
                "put -: stdin must be a file (cloudy put - < FILE); a pipe's size is not known \
                 before its end, and a put needs it first",
            ));
        }
        (Box::new(stdin.lock()), meta.len())
    } else {
        let f = File::open(input).map_err(|e| err(format!("{input}: {e}")))?;
        let size = f
            .metadata()
            .map_err(|e| err(format!("{input}: {e}")))?
            .len();
        (
            Box::new(std::io::BufReader::with_capacity(64 * 1024, f)),
            size,
        )
    };
    let boxes = candidates(cli)?;
    let r = client::put(&mut reader, size, boxes, &opts, &mut progress(size, "put"))
        .map_err(|e| err(e.to_string()))?;
    let cap = r.cap.to_text();
    if cli.json {
        let shares: Vec<String> = r
            .placed
            .iter()
            .map(|(s, b)| format!("{{\"share\":{s},\"box\":{}}}", json_str(b)))
            .collect();
        let _ = writeln!(
            out,
            "{{\"cap\":{},\"verify_cap\":{},\"size\":{size},\"shares\":[{}],\"boxes\":{},\"problems\":[{}]}}",
            json_str(&cap),
            json_str(&r.cap.verify_cap().to_text()),
            shares.join(","),
            r.boxes,
            r.failures.iter().map(|f| json_str(f)).collect::<Vec<_>>().join(",")
        );
    } else {
        for f in &r.failures {
            eprintln!("cloudy: put: {f} (another box took the share)");
        }
        if r.placed.len() < usize::from(opts.total) {
            eprintln!(
                "cloudy: put: {} of {} shares placed on {} boxes; `cloudy check --repair` adds the rest",
                r.placed.len(),
                opts.total,
                r.boxes
            );
        }
        let _ = writeln!(out, "{cap}");
    }
    Ok(())
}

fn get(cli: &Cli, cap: &str, output: Option<&Path>, out: &mut dyn Write) -> Result<(), Failure> {
    let cap = ReadCap::parse(cap).map_err(|e| err(e.to_string()))?;
    let cfg = load_config(cli)?;
    let boxes = candidates(cli)?;
    let dev = device(&cfg);
    let size = cap.shape.size;
    let report = match output {
        None => client::get(&dev, &cap, boxes, out, &mut progress(size, "get")),
        Some(path) => {
            let mut part = path.as_os_str().to_owned();
            part.push(".part");
            let part = PathBuf::from(part);
            let f = File::create(&part).map_err(|e| err(format!("{}: {e}", part.display())))?;
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
            let r = client::get(&dev, &cap, boxes, &mut w, &mut progress(size, "get"));
            let done = r.and_then(|rep| {
                let f = w
                    .into_inner()
                    .map_err(|e| client::StoreError::Output(e.into_error()))?;
                f.sync_all().map_err(client::StoreError::Output)?;
                std::fs::rename(&part, path).map_err(client::StoreError::Output)?;
                Ok(rep)
            });
            if done.is_err() {
                let _ = std::fs::remove_file(&part);
            }
            done
        }
    }
    .map_err(|e| err(e.to_string()))?;
    for r in &report.reasons {
        eprintln!("cloudy: get: {r} (skipped: the file came from other boxes)");
    }
    if cli.json && output.is_some() {
        let _ = writeln!(out, "{{\"bytes\":{}}}", report.bytes);
    }
    Ok(())
}

fn check(cli: &Cli, cap: &str, repair: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let vcap = VerifyCap::parse(cap).map_err(|e| err(e.to_string()))?;
    let cfg = load_config(cli)?;
    let boxes = candidates(cli)?;
    let r = client::check(&device(&cfg), &vcap, boxes, repair).map_err(|e| err(e.to_string()))?;
    let status = |st: crate::store::proto::CheckStatus, seg: u32| -> String {
        use crate::store::proto::CheckStatus;
        match st {
            CheckStatus::Good => "good".into(),
            CheckStatus::BadBlock => format!("bad (segment {seg})"),
            CheckStatus::BadHeader => "bad (header or hash tree)".into(),
            CheckStatus::Unknown(v) => format!("status {v}"),
        }
    };
    if cli.json {
        let boxes: Vec<String> = r
            .boxes
            .iter()
            .map(|b| {
                let shares: Vec<String> = b
                    .entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{{\"share\":{},\"status\":{}}}",
                            e.share,
                            json_str(&status(e.status, e.bad_segment))
                        )
                    })
                    .collect();
                format!(
                    "{{\"box\":{},\"shares\":[{}],\"error\":{}}}",
                    json_str(&b.name),
                    shares.join(","),
                    b.error.as_deref().map_or("null".into(), json_str)
                )
            })
            .collect();
        let repaired: Vec<String> = r
            .repaired
            .iter()
            .map(|(s, b)| format!("{{\"share\":{s},\"box\":{}}}", json_str(b)))
            .collect();
        let _ = writeln!(
            out,
            "{{\"good_shares\":{},\"needed\":{},\"total\":{},\"healthy\":{},\"boxes\":[{}],\"repaired\":[{}],\"problems\":[{}]}}",
            r.good_shares.len(),
            vcap.shape.needed,
            vcap.shape.total,
            r.good_shares.len() + r.repaired.len() >= usize::from(vcap.shape.total),
            boxes.join(","),
            repaired.join(","),
            r.problems.iter().map(|p| json_str(p)).collect::<Vec<_>>().join(",")
        );
    } else {
        let mut text = String::new();
        for b in &r.boxes {
            if let Some(e) = &b.error {
                text += &format!("{:<16} unreachable: {e}\n", b.name);
                continue;
            }
            for e in &b.entries {
                text += &format!(
                    "{:<16} share {:>2}: {}\n",
                    b.name,
                    e.share,
                    status(e.status, e.bad_segment)
                );
            }
        }
        text += &format!(
            "{} of {} shares good ({} needed)\n",
            r.good_shares.len(),
            vcap.shape.total,
            vcap.shape.needed
        );
        for (s, b) in &r.repaired {
            text += &format!("repaired share {s} on {b}\n");
        }
        for p in &r.problems {
            eprintln!("cloudy: check --repair: {p}");
        }
        let _ = out.write_all(text.as_bytes());
    }
    if r.good_shares.len() + r.repaired.len() < usize::from(vcap.shape.needed) {
        return Err(err(
            "the file cannot be read: fewer good shares than needed",
        ));
    }
    Ok(())
}

fn info(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let Response::Status(st) = super::cli::ask(cli, &Request::Status)? else {
        return Err(err("unexpected answer from the daemon"));
    };
    let Some(s) = st.store else {
        let _ = writeln!(
            out,
            "{}",
            if cli.json {
                "{\"store\":null}"
            } else {
                "no store on this box (a client only): add `config store` to serve"
            }
        );
        return Ok(());
    };
    let _ = out.write_all(format_info(&s, cli.json).as_bytes());
    Ok(())
}

/// `cloudy store` output.
pub fn format_info(s: &StoreInfo, json: bool) -> String {
    if json {
        return format!(
            "{{\"store\":{{\"path\":{},\"port\":{},\"serving\":{},\"error\":{},\"used\":{},\"reserved\":{},\"quota\":{},\"shares\":{},\"files\":{},\"connections\":{},\"refused_busy\":{},\"errors\":{},\"shares_stored\":{},\"blocks_served\":{}}}}}\n",
            json_str(&s.path),
            s.port,
            s.serving,
            s.error.as_deref().map_or("null".into(), json_str),
            s.used,
            s.reserved,
            s.quota,
            s.shares,
            s.files,
            s.connections,
            s.refused_busy,
            s.errors,
            s.shares_stored,
            s.blocks_served
        );
    }
    let size = crate::config::schema::format_size;
    let state = match (&s.error, s.serving) {
        (_, true) => format!("serving on port {}", s.port),
        (Some(e), false) => format!("off: {e}"),
        (None, false) => "off".into(),
    };
    format!(
        "store    {}: {state}\nused     {} of {} ({} reserved by puts in progress)\nshares   {} of {} files\nserved   {} connections, {} shares stored, {} blocks read, {} errors, {} refused busy\n",
        s.path,
        size(s.used),
        size(s.quota),
        size(s.reserved),
        s.shares,
        s.files,
        s.connections,
        s.shares_stored,
        s.blocks_served,
        s.errors,
        s.refused_busy
    )
}
