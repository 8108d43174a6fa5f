//! The OpenWrt package and feed, checked without the SDK or opkg (neither
//! is packaged for Debian): `cross/ipk.sh` builds an `.ipk` around the
//! binary under test, and these tests read it byte by byte.
//!
//! - layout: outer gzip'd tar of `./debian-binary ./data.tar.gz
//!   ./control.tar.gz` (ipkg-build's order), inner tars sorted, owners 0:0,
//!   one mtime, `gzip -n`; reproducible;
//! - control fields, conffiles, `/lib/upgrade/keep.d` for the key, modes;
//! - the init script: `sh -n`, only rc.common/procd/uci functions, and its
//!   `start_service`/`reload_service` run against recording stubs;
//! - the packaged default config against `tests/golden/`;
//! - the packaged binary from `data.tar.gz` runs `--version`,
//!   `check-config` on the packaged config and `self-test`: natively for
//!   x86_64, under qemu for every board `make test-cross` built (out/).
//!
//! No root needed. Temporary files go under the system temp dir and are
//! removed at the end.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cloudy_tests::{cloudy_bin, run_timeout, workspace_root, Run};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// A fixed SOURCE_DATE_EPOCH, so two builds can be compared byte for byte.
const EPOCH: u64 = 1_700_000_000;

// ---------------------------------------------------------------- helpers

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("cloudy-ipk-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn loud(line: &str) {
    // Straight to fd 2: libtest captures eprintln! of passing tests.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn workspace_version() -> String {
    let text = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    text.lines()
        .find_map(|l| {
            let v = l.trim().strip_prefix("version")?.trim().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        })
        .expect("workspace version")
}

fn feed_makefile() -> String {
    std::fs::read_to_string(workspace_root().join("openwrt-feed/net/cloudy/Makefile")).unwrap()
}

/// `KEY:=value` of the feed Makefile.
fn feed_var(key: &str) -> String {
    let mk = feed_makefile();
    mk.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}:="))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("{key} missing from the feed Makefile"))
}

/// The lines of a `define NAME ... endef` block of the feed Makefile.
fn feed_block(name: &str) -> Vec<String> {
    let mk = feed_makefile();
    let mut lines = mk
        .lines()
        .skip_while(|l| l.trim() != format!("define {name}"));
    assert!(lines.next().is_some(), "define {name} missing");
    lines
        .take_while(|l| l.trim() != "endef")
        .map(str::to_string)
        .collect()
}

/// A `KEY=value` of a board file (quotes removed).
fn board_var(board: &str, key: &str) -> String {
    let text = std::fs::read_to_string(workspace_root().join(format!("boards/{board}.conf")))
        .unwrap_or_else(|e| panic!("boards/{board}.conf: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} missing from boards/{board}.conf"))
}

fn boards() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(workspace_root().join("boards"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".conf").map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

fn check(run: Run, what: &str) -> String {
    assert!(run.ok(), "{what} failed: {run:?}");
    run.stdout
}

/// Builds the ipk of `board` around `bin` into `out`; returns its path.
fn build_ipk(board: &str, bin: &Path, out: &Path) -> PathBuf {
    let stdout = check(
        run_timeout(
            Command::new("bash")
                .arg(workspace_root().join("cross/ipk.sh"))
                .arg(board)
                .arg(bin)
                .env("CLOUDY_OUT", out)
                .env("CROSS_NO_INSTALL", "1")
                .env("SOURCE_DATE_EPOCH", EPOCH.to_string()),
            SCRIPT_TIMEOUT,
        ),
        "cross/ipk.sh",
    );
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(path.is_file(), "no ipk at {path:?}: {stdout}");
    path
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(bytes.get(..2), Some(&[0x1f, 0x8b][..]), "not gzip");
    // gzip -n: no name and a zero mtime in the header (reproducible).
    assert_eq!(
        bytes.get(4..8),
        Some(&[0, 0, 0, 0][..]),
        "gzip header has an mtime"
    );
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    out.stdout
}

/// One member of a tar archive.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    kind: u8,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or_else(|_| panic!("bad octal field {s:?}"))
}

/// A minimal reader of the GNU/ustar tars the scripts write.
fn untar(bytes: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name: String = h[..100]
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect();
        let size = usize::try_from(octal(&h[124..136])).unwrap();
        let kind = h[156];
        assert!(
            kind != b'L' && kind != b'K',
            "long names are not expected: {name}"
        );
        let data = bytes[at + 512..at + 512 + size].to_vec();
        entries.push(Entry {
            name,
            mode: u32::try_from(octal(&h[100..108])).unwrap(),
            uid: u32::try_from(octal(&h[108..116])).unwrap(),
            gid: u32::try_from(octal(&h[116..124])).unwrap(),
            mtime: octal(&h[136..148]),
            kind,
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

fn member<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", names(entries)))
}

fn text(e: &Entry) -> String {
    String::from_utf8(e.data.clone()).unwrap()
}

/// The three parts of an ipk.
struct Ipk {
    outer: Vec<Entry>,
    control: Vec<Entry>,
    data: Vec<Entry>,
    data_tar_len: usize,
}

fn read_ipk(path: &Path) -> Ipk {
    let outer = untar(&gunzip(&std::fs::read(path).unwrap()));
    let control = untar(&gunzip(&member(&outer, "./control.tar.gz").data));
    let data_tar = gunzip(&member(&outer, "./data.tar.gz").data);
    Ipk {
        data: untar(&data_tar),
        data_tar_len: data_tar.len(),
        control,
        outer,
    }
}

/// `Field: value` lines of a control file (continuations dropped).
fn control_field(control: &str, key: &str) -> Option<String> {
    control
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim().to_string())
}

/// Unpacks data.tar.gz of `ipk` into `dir` with the system tar.
fn unpack_data(ipk: &Ipk, dir: &Path) {
    let tgz = dir.join("data.tar.gz");
    std::fs::write(&tgz, &member(&ipk.outer, "./data.tar.gz").data).unwrap();
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    check(
        run_timeout(
            Command::new("tar")
                .arg("-xzf")
                .arg(&tgz)
                .arg("-C")
                .arg(&root),
            RUN_TIMEOUT,
        ),
        "tar -x",
    );
}

/// The board's packaged UCI config, as cross/lib.sh makes it.
fn board_config(board: &str) -> String {
    check(
        run_timeout(
            Command::new("bash").arg("-c").arg(format!(
                ". '{}/cross/lib.sh' && load_board {board} && board_config",
                workspace_root().display()
            )),
            RUN_TIMEOUT,
        ),
        "board_config",
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn ipk_layout_control_and_modes() {
    let tmp = TempDir::new("layout");
    let bin = cloudy_bin();
    let path = build_ipk("x86_64", &bin, &tmp.0.join("a"));
    let version = workspace_version();
    let release = feed_var("PKG_RELEASE");
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("cloudy_{version}-{release}_x86_64.ipk")
    );
    let ipk = read_ipk(&path);

    // Outer archive: ipkg-build's members and order, plain files, root.
    assert_eq!(
        names(&ipk.outer),
        ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
    );
    assert_eq!(text(member(&ipk.outer, "./debian-binary")), "2.0\n");
    for part in [&ipk.outer, &ipk.control, &ipk.data] {
        for e in part.iter() {
            assert_eq!((e.uid, e.gid), (0, 0), "{} owner", e.name);
            assert_eq!(e.mtime, EPOCH, "{} mtime", e.name);
            assert!(e.name == "./" || e.name.starts_with("./"), "{}", e.name);
        }
    }
    for e in &ipk.outer {
        assert_eq!((e.kind, e.mode), (b'0', 0o644), "{}", e.name);
    }

    // Inner archives are sorted (tar --sort=name of ".").
    for part in [&ipk.control, &ipk.data] {
        let n = names(part);
        let mut sorted = n.clone();
        sorted.sort();
        assert_eq!(n, sorted);
        assert_eq!(n.first(), Some(&"./"));
    }

    // control.tar.gz
    assert_eq!(
        names(&ipk.control),
        ["./", "./conffiles", "./control", "./postinst", "./prerm"]
    );
    for (name, mode) in [
        ("./conffiles", 0o644),
        ("./control", 0o644),
        ("./postinst", 0o755),
        ("./prerm", 0o755),
    ] {
        assert_eq!(member(&ipk.control, name).mode, mode, "{name}");
    }
    let control = text(member(&ipk.control, "./control"));
    let field = |k: &str| control_field(&control, k).unwrap_or_else(|| panic!("{k}: {control}"));
    assert_eq!(field("Package"), "cloudy");
    assert_eq!(field("Version"), format!("{version}-{release}"));
    assert_eq!(field("Architecture"), board_var("x86_64", "OPENWRT_ARCH"));
    assert_eq!(field("Depends"), "libc, kmod-tun");
    assert_eq!(field("Section"), "net");
    assert_eq!(field("License"), feed_var("PKG_LICENSE"));
    assert_eq!(field("LicenseFiles"), feed_var("PKG_LICENSE_FILES"));
    assert_eq!(field("Maintainer"), feed_var("PKG_MAINTAINER"));
    assert_eq!(field("SourceDateEpoch"), EPOCH.to_string());
    assert_eq!(field("Installed-Size"), ipk.data_tar_len.to_string());
    assert!(control.contains("\nDescription: cloudy "), "{control}");
    assert!(control.ends_with('\n'));
    // Field order as the SDK writes it.
    let keys: Vec<&str> = control
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "Package",
            "Version",
            "Depends",
            "Source",
            "SourceName",
            "License",
            "LicenseFiles",
            "Section",
            "SourceDateEpoch",
            "Maintainer",
            "Architecture",
            "Installed-Size",
            "Description"
        ]
    );

    // conffiles: the shipped config; the key, certificate, revocation list
    // and authority key (made on the box) are kept by sysupgrade through
    // keep.d, as the SDK does for such entries.
    assert_eq!(
        text(member(&ipk.control, "./conffiles")),
        "/etc/config/cloudy\n"
    );
    let feed_conffiles = feed_block("Package/cloudy/conffiles");
    assert_eq!(
        feed_conffiles,
        [
            "/etc/config/cloudy",
            "/etc/cloudy/key",
            "/etc/cloudy/cert",
            "/etc/cloudy/revoked",
            "/etc/cloudy/authority.key"
        ]
    );
    assert_eq!(
        text(member(&ipk.data, "./lib/upgrade/keep.d/cloudy")),
        "/etc/cloudy/key\n/etc/cloudy/cert\n/etc/cloudy/revoked\n/etc/cloudy/authority.key\n"
    );

    // data.tar.gz: files, modes, directories.
    assert_eq!(
        names(&ipk.data),
        [
            "./",
            "./etc/",
            "./etc/config/",
            "./etc/config/cloudy",
            "./etc/init.d/",
            "./etc/init.d/cloudy",
            "./lib/",
            "./lib/upgrade/",
            "./lib/upgrade/keep.d/",
            "./lib/upgrade/keep.d/cloudy",
            "./usr/",
            "./usr/sbin/",
            "./usr/sbin/cloudy",
        ]
    );
    for e in &ipk.data {
        let want = match e.name.as_str() {
            "./usr/sbin/cloudy" | "./etc/init.d/cloudy" => 0o755,
            "./etc/config/cloudy" => 0o600,
            "./lib/upgrade/keep.d/cloudy" => 0o644,
            n if n.ends_with('/') => 0o755,
            n => panic!("unexpected {n}"),
        };
        assert_eq!(e.mode, want, "mode of {}", e.name);
        assert_eq!(e.kind, if e.name.ends_with('/') { b'5' } else { b'0' });
    }
    assert_eq!(
        member(&ipk.data, "./usr/sbin/cloudy").data,
        std::fs::read(&bin).unwrap()
    );
    assert_eq!(
        text(member(&ipk.data, "./etc/init.d/cloudy")),
        std::fs::read_to_string(workspace_root().join("openwrt-feed/net/cloudy/files/cloudy.init"))
            .unwrap()
    );

    // Reproducible: a second build is the same bytes.
    let again = build_ipk("x86_64", &bin, &tmp.0.join("b"));
    assert!(
        std::fs::read(&path).unwrap() == std::fs::read(&again).unwrap(),
        "two builds of the ipk differ"
    );
}

/// Commands the init script may call besides its own functions and the
/// binary: rc.common, procd.sh and functions.sh helpers, and shell builtins.
const INIT_ALLOWED: &[&str] = &[
    // shell
    "[",
    "test",
    "echo",
    "return",
    "local",
    "true",
    "false",
    "shift",
    "exit",
    "trap",
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "case",
    "esac",
    "for",
    "while",
    "do",
    "done",
    "{",
    "}",
    // functions.sh (config_*), procd.sh (procd_*, uci_*)
    "config_load",
    "config_foreach",
    "config_get",
    "config_get_bool",
    "config_list_foreach",
    "uci_load_validate",
    "uci_validate_section",
    "procd_open_instance",
    "procd_set_param",
    "procd_append_param",
    "procd_close_instance",
    "procd_add_reload_trigger",
    "procd_add_validation",
    "procd_send_signal",
    "procd_running",
    "start",
    "stop",
    "procd_open_trigger",
    "procd_close_trigger",
    "procd_add_interface_trigger",
    // the agent itself
    "\"$PROG\"",
];

fn init_script() -> String {
    std::fs::read_to_string(workspace_root().join("openwrt-feed/net/cloudy/files/cloudy.init"))
        .unwrap()
}

#[test]
fn init_script_syntax_and_allowed_calls() {
    let script = init_script();
    assert!(script.starts_with("#!/bin/sh /etc/rc.common\n"));
    for needle in [
        "\nUSE_PROCD=1\n",
        "\nSTART=",
        "procd_set_param stdout 1",
        "procd_set_param stderr 1",
        "procd_set_param respawn",
        "procd_add_reload_trigger cloudy",
        "procd_send_signal cloudy '*' HUP",
        "procd_set_param reload_signal HUP",
        "uci_load_validate cloudy agent",
    ] {
        assert!(script.contains(needle), "init script lacks {needle:?}");
    }
    check(
        run_timeout(
            Command::new("sh")
                .arg("-n")
                .arg(workspace_root().join("openwrt-feed/net/cloudy/files/cloudy.init")),
            RUN_TIMEOUT,
        ),
        "sh -n cloudy.init",
    );

    // Every command word must be allowed or a function of the script.
    let mut defined = BTreeSet::new();
    for l in script.lines() {
        if let Some(name) = l.trim().strip_suffix("() {") {
            defined.insert(name.to_string());
        }
    }
    for required in ["start_service", "reload_service", "service_triggers"] {
        assert!(defined.contains(required), "{required} not defined");
    }
    let mut continued = false;
    for (i, raw) in script.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        let was_continued = continued;
        continued = line.ends_with('\\');
        if was_continued || line.is_empty() || line.starts_with('#') || line.ends_with("() {") {
            continue;
        }
        for stmt in line.split(['|', ';']).flat_map(|s| s.split("&&")) {
            let stmt = stmt.trim().trim_start_matches(['{', '(', ' ']).trim();
            let Some(word) = stmt.split_whitespace().next() else {
                continue;
            };
            let is_assignment = word
                .split_once('=')
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if is_assignment || word == "}" || word == ")" {
                continue;
            }
            assert!(
                INIT_ALLOWED.contains(&word) || defined.contains(word),
                "cloudy.init:{}: calls {word:?}, not an rc.common/procd/uci function",
                i + 1
            );
        }
    }
}

/// Option names, each with its default if one is stated.
type Options = Vec<(String, Option<String>)>;

/// The options each `uci_load_validate cloudy TYPE` of the init script
/// checks, with their defaults (`NAME:TYPE[:DEFAULT]`, single- or
/// double-quoted, one per continued line).
fn init_validated(script: &str) -> Vec<(String, Options)> {
    let mut out: Vec<(String, Options)> = Vec::new();
    let mut lines = script.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("uci_load_validate cloudy ") else {
            continue;
        };
        let ty = rest.split_whitespace().next().unwrap_or("").to_string();
        let mut options = Vec::new();
        let mut more = l.ends_with('\\');
        while more {
            let Some(l) = lines.next() else { break };
            more = l.ends_with('\\');
            let spec = l.trim_end_matches('\\').trim();
            let spec = spec.trim_matches(|c| c == '\'' || c == '"');
            let mut parts = spec.splitn(2, ':');
            let name = parts.next().unwrap_or("").to_string();
            // The default follows the type's last ':' (types have none).
            let default = parts
                .next()
                .and_then(|t| t.rsplit_once(':'))
                .map(|(_, d)| d.to_string());
            options.push((name, default));
        }
        out.push((ty, options));
    }
    out
}

/// The options of a section type's table in config/schema.rs, with the
/// default each states (`need: Need::Default("...")`).
fn schema_options(ty: &str) -> Options {
    let schema =
        std::fs::read_to_string(workspace_root().join("agent/src/config/schema.rs")).unwrap();
    let head = format!("pub const {}_OPTIONS: &[OptionSpec<", ty.to_uppercase());
    let table = schema
        .split(&head)
        .nth(1)
        .and_then(|s| s.split("\n];").next())
        .unwrap_or_else(|| panic!("{ty}'s table in config/schema.rs"));
    let mut out: Options = Vec::new();
    for l in table.lines().map(str::trim) {
        if let Some(name) = l.strip_prefix("name: \"").and_then(|l| l.split('"').next()) {
            out.push((name.to_string(), None));
        } else if let Some(d) = l.strip_prefix("need: Need::Default(\"") {
            if let Some(last) = out.last_mut() {
                last.1 = d.split('"').next().map(str::to_string);
            }
        }
    }
    out
}

/// The init script validates options of the agent's own tables, with
/// the same defaults: the main ones of `config agent`, every one of
/// `config store`.
#[test]
fn init_script_validates_the_tables_options() {
    let validated = init_validated(&init_script());
    let types: Vec<&str> = validated.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["agent", "store"]);
    for (ty, options) in &validated {
        let table = schema_options(ty);
        assert!(table.len() > 3, "{ty}: {table:?}");
        for (name, default) in options {
            let Some((_, want)) = table.iter().find(|(n, _)| n == name) else {
                panic!("init validates {ty}.{name}, not an option of config {ty}");
            };
            if let Some(d) = default {
                assert_eq!(Some(d), want.as_ref(), "default of {ty}.{name}");
            }
        }
        let names: BTreeSet<&str> = options.iter().map(|(n, _)| n.as_str()).collect();
        let must: Vec<&str> = match ty.as_str() {
            "agent" => vec![
                "cloud",
                "key_file",
                "listen_port",
                "mode",
                "interface",
                "address",
                "mtu",
            ],
            _ => table.iter().map(|(n, _)| n.as_str()).collect(),
        };
        for main in must {
            assert!(names.contains(main), "{ty}.{main} is not validated");
        }
    }
}

/// Runs the init script's procd functions against stubs that record the
/// calls: start_service registers `cloudy daemon` in the foreground with
/// respawn and logging, reload_service sends SIGHUP, and a bad config
/// stops both before procd is asked anything.
#[test]
fn init_script_functions_against_stubs() {
    let tmp = TempDir::new("stubs");
    let good = tmp.0.join("good.config");
    std::fs::write(&good, board_config("x86_64")).unwrap();
    let bad = tmp.0.join("bad.config");
    std::fs::write(&bad, "config agent\n\toption listen_port 'none'\n").unwrap();
    let bin = cloudy_bin();
    // `running`: whether procd_running says an agent runs.
    let run_with = |conf: &Path, call: &str, running: bool| -> Run {
        let stubs = r#"
calls=""
log() { calls="$calls|$*"; }
procd_running() { log running "$@"; [ "$RUNNING" = 1 ]; }
start() { log start; }
stop() { log stop; }
config_load() { log config_load "$@"; }
config_foreach() { f=$1 ty=$2; shift 2; for s in $SECTIONS; do [ "${s%%:*}" = "$ty" ] && "$f" "${s#*:}" "$@"; done; return 0; }
uci_load_validate() { pkg=$1 type=$2 name=$3 cb=$4; shift 4; log validate "$pkg" "$type" "$name" "$#"; "$cb" "$name" 0; }
procd_open_instance() { log open; }
procd_set_param() { log set "$@"; }
procd_close_instance() { log close; }
procd_send_signal() { log signal "$@"; }
procd_add_reload_trigger() { log trigger "$@"; }
procd_add_validation() { log validation "$@"; }
"#;
        // The file's sections as `config_foreach` sees them: TYPE:NAME,
        // anonymous ones named cfgN as config_load names them.
        let text = std::fs::read_to_string(conf).unwrap();
        let sections: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("config "))
            .enumerate()
            .map(|(i, l)| {
                let mut words = l.split_whitespace();
                let ty = words.next().unwrap_or("");
                let name = words
                    .next()
                    .map_or_else(|| format!("cfg{i}"), |n| n.trim_matches('\'').to_string());
                format!("{ty}:{name}")
            })
            .collect();
        let script = format!(
            "{stubs}\n. '{init}'\nPROG='{bin}'\nCONF='{conf}'\nRUNNING={}\nSECTIONS='{}'\n{call}; rc=$?\necho \"rc=$rc$calls\"",
            u8::from(running),
            sections.join(" "),
            init = workspace_root()
                .join("openwrt-feed/net/cloudy/files/cloudy.init")
                .display(),
            bin = bin.display(),
            conf = conf.display(),
        );
        run_timeout(Command::new("sh").arg("-c").arg(script), RUN_TIMEOUT)
    };
    let run = |conf: &Path, call: &str| run_with(conf, call, true);
    let out = run(&good, "start_service").stdout;
    let instance = |conf: &Path| {
        format!(
            "|open|set command {} -c {} daemon|set respawn 3600 5 5|set stdout 1|set stderr 1\
             |set file {}|set reload_signal HUP|close",
            bin.display(),
            conf.display(),
            conf.display()
        )
    };
    let checks = "|config_load cloudy|validate cloudy agent agent 15";
    assert_eq!(out.trim(), format!("rc=0{checks}{}", instance(&good)));
    let out = run(&good, "reload_service").stdout;
    assert_eq!(
        out.trim(),
        format!("rc=0{checks}|running cloudy|signal cloudy * HUP")
    );
    // Reload of a stopped agent (a failed start) with a good file starts it.
    let out = run_with(&good, "reload_service", false).stdout;
    assert_eq!(out.trim(), format!("rc=0{checks}|running cloudy|start"));
    // Restart checks before it stops.
    let out = run(&good, "restart").stdout;
    assert_eq!(out.trim(), format!("rc=0{checks}|stop|start"));
    let r = run(&bad, "restart");
    assert!(r.stdout.trim().starts_with("rc=1|config_load"), "{r:?}");
    assert!(
        !r.stdout.contains("|stop"),
        "restart stopped the agent: {r:?}"
    );
    // A bad file at start: a running agent is declared again (an empty
    // instance list would make procd stop it); a stopped one stays so.
    let r = run(&bad, "start_service");
    assert!(
        r.stdout.trim().starts_with("rc=1|config_load")
            && r.stdout.trim().ends_with(&instance(&bad)),
        "{r:?}"
    );
    assert!(r.stderr.contains("keeping the running agent"), "{r:?}");
    let r = run_with(&bad, "start_service", false);
    assert!(!r.stdout.contains("|open"), "{r:?}");
    let out = run(&good, "service_triggers").stdout;
    assert_eq!(
        out.trim(),
        "rc=0|trigger cloudy|validation validate_sections"
    );
    // A store section is validated too, and check-config checks its
    // directory: a missing one (a disk not mounted) is a warning, and the
    // reload goes on (the daemon keeps trying the store).
    let disk = tmp.0.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let with_store = tmp.0.join("store.config");
    let text = format!(
        "{}\nconfig store 'disk'\n\toption path '{}'\n\toption quota '2G'\n",
        board_config("x86_64"),
        disk.display()
    );
    std::fs::write(&with_store, text).unwrap();
    let store_checks = format!("{checks}|validate cloudy store disk 7");
    let out = run(&with_store, "start_service").stdout;
    assert_eq!(
        out.trim(),
        format!("rc=0{store_checks}{}", instance(&with_store))
    );
    std::fs::remove_dir(&disk).unwrap();
    let r = run(&with_store, "reload_service");
    assert_eq!(
        r.stdout.trim(),
        format!("rc=0{store_checks}|running cloudy|signal cloudy * HUP"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(&format!("store path {}: no such directory", disk.display())),
        "{r:?}"
    );
    for call in ["start_service", "reload_service"] {
        let r = run_with(&bad, call, false);
        assert!(
            r.stdout
                .trim()
                .starts_with("rc=1|config_load cloudy|validate"),
            "{call} with a bad config: {r:?}"
        );
        assert!(
            !r.stdout.contains("|open") && !r.stdout.contains("|signal"),
            "{r:?}"
        );
        assert!(
            r.stderr.contains("listen_port"),
            "no FILE:LINE error: {r:?}"
        );
    }
}

#[test]
fn maintainer_scripts() {
    let tmp = TempDir::new("scripts");
    let ipk = read_ipk(&build_ipk("x86_64", &cloudy_bin(), &tmp.0));
    for (name, call) in [
        ("./postinst", "default_postinst"),
        ("./prerm", "default_prerm"),
    ] {
        let body = text(member(&ipk.control, name));
        assert!(body.starts_with("#!/bin/sh\n"), "{name}");
        assert!(body.contains("${IPKG_INSTROOT}/lib/functions.sh"), "{name}");
        assert!(body.contains(&format!("{call} $0 $@")), "{name}: {body}");
        let file = tmp.0.join(name.trim_start_matches("./"));
        std::fs::write(&file, &body).unwrap();
        check(
            run_timeout(Command::new("sh").arg("-n").arg(&file), RUN_TIMEOUT),
            "sh -n",
        );
        // Against a fake IPKG_INSTROOT: sources functions.sh and calls the
        // default with the script's arguments.
        let root = tmp.0.join("instroot");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(
            root.join("lib/functions.sh"),
            "default_postinst() { echo \"postinst $*\"; }\ndefault_prerm() { echo \"prerm $*\"; }\n",
        )
        .unwrap();
        let r = run_timeout(
            Command::new("sh")
                .arg(&file)
                .arg("upgrade")
                .env("IPKG_INSTROOT", &root),
            RUN_TIMEOUT,
        );
        let word = call.trim_start_matches("default_");
        assert_eq!(
            r.stdout.trim(),
            format!("{word} {} upgrade", file.display()),
            "{r:?}"
        );
        // Outside OpenWrt (no functions.sh) it does nothing, successfully.
        let r = run_timeout(
            Command::new("sh")
                .arg(&file)
                .env("IPKG_INSTROOT", tmp.0.join("nowhere")),
            RUN_TIMEOUT,
        );
        assert!(r.ok() && r.stdout.is_empty(), "{r:?}");
    }
    // IPKG_NO_SCRIPT=1 skips the postinst.
    let r = run_timeout(
        Command::new("sh")
            .arg(tmp.0.join("postinst"))
            .env("IPKG_NO_SCRIPT", "1")
            .env("IPKG_INSTROOT", tmp.0.join("instroot")),
        RUN_TIMEOUT,
    );
    assert!(r.ok() && r.stdout.is_empty(), "{r:?}");
}

#[test]
fn golden_default_configs() {
    let golden = |name: &str| {
        std::fs::read_to_string(workspace_root().join("tests/golden").join(name)).unwrap()
    };
    let feed = std::fs::read_to_string(
        workspace_root().join("openwrt-feed/net/cloudy/files/cloudy.config"),
    )
    .unwrap();
    assert_eq!(feed, golden("cloudy.config"), "files/cloudy.config changed");
    for board in boards() {
        let want = if board_var(&board, "UCI_DEFAULTS").is_empty() {
            golden("cloudy.config")
        } else {
            assert_eq!(board_var(&board, "UCI_DEFAULTS"), "option log_level 'warn'");
            golden("cloudy-log-warn.config")
        };
        let got = board_config(&board);
        assert_eq!(got, want, "packaged config of {board}");
    }
    // No peers, no key yet: the shipped default waits for peers.
    assert!(!feed.lines().any(|l| l.starts_with("config peer")));
}

/// The SDK build takes its cargo features from the boards (features.sh),
/// so a package built with the SDK has what `make ipk` gives that board;
/// an architecture without a board gets the portable set.
#[test]
fn feed_features_follow_the_boards() {
    let feed = workspace_root().join("openwrt-feed/net/cloudy");
    let makefile = std::fs::read_to_string(feed.join("Makefile")).unwrap();
    assert!(
        makefile.contains(
            "RUST_PKG_FEATURES:=$(shell sh $(CURDIR)/features.sh $(CLOUDY_SRC)/boards $(ARCH_PACKAGES))"
        ),
        "the feed Makefile must take its features from features.sh"
    );
    assert!(makefile.contains("CARGO_PKG_ARGS+=--no-default-features"));
    let features_for = |arch: &str| {
        let out = Command::new("sh")
            .arg(feed.join("features.sh"))
            .arg(workspace_root().join("boards"))
            .arg(arch)
            .output()
            .expect("run features.sh");
        assert!(out.status.success(), "features.sh {arch}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    for board in boards() {
        let want = board_var(&board, "FEATURES").replace(' ', ",");
        assert_eq!(
            features_for(&board_var(&board, "OPENWRT_ARCH")),
            want,
            "{board}"
        );
        assert!(want.split(',').any(|f| f == "discovery"), "{board}: {want}");
    }
    assert_eq!(features_for("powerpc_464fp"), "overlay,discovery");
}

/// Extracts the packaged binary and runs it as the box would: natively for
/// x86_64, under qemu for every board whose binary `make test-cross` left
/// in out/ (skipped loudly when it has not run).
#[test]
fn packaged_binary_runs_on_every_board() {
    let version = workspace_version();
    let out_dir = std::env::var_os("CLOUDY_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("out"));
    let mut ran = Vec::new();
    for board in boards() {
        let bin = if board == "x86_64" {
            cloudy_bin()
        } else {
            let b = out_dir.join(&board).join("cloudy");
            if !b.is_file() {
                cloudy_tests::skip_part(
                    &format!("packaged binary of {board}"),
                    &format!("no {} (run `make test-cross`)", b.display()),
                );
                continue;
            }
            b
        };
        let qemu = board_var(&board, "QEMU");
        if !qemu.is_empty() && Command::new(&qemu).arg("--version").output().is_err() {
            cloudy_tests::skip_part(
                &format!("packaged binary of {board}"),
                &format!("{qemu} not installed"),
            );
            continue;
        }
        let tmp = TempDir::new(&format!("run-{board}"));
        let ipk = read_ipk(&build_ipk(&board, &bin, &tmp.0.join("out")));
        unpack_data(&ipk, &tmp.0);
        let root = tmp.0.join("root");
        let packaged = root.join("usr/sbin/cloudy");
        let config = root.join("etc/config/cloudy");
        let cpu = board_var(&board, "QEMU_CPU");
        let cloudy = |args: &[&str]| -> Run {
            let mut cmd = if qemu.is_empty() {
                Command::new(&packaged)
            } else {
                let mut c = Command::new(&qemu);
                c.arg("-cpu").arg(&cpu).arg(&packaged);
                c
            };
            run_timeout(cmd.args(args).env_remove("CLOUDY_CONFIG"), RUN_TIMEOUT)
        };
        let r = cloudy(&["--version"]);
        assert_eq!(r.stdout, format!("cloudy {version}\n"), "{board}: {r:?}");
        let r = cloudy(&["check-config", "-c", config.to_str().unwrap()]);
        assert_eq!(
            r.stdout,
            format!(
                "ok: {} (0 peers; no key file yet: the daemon's first start creates /etc/cloudy/key)\n",
                config.display()
            ),
            "{board}: {r:?}"
        );
        let r = cloudy(&["self-test"]);
        assert!(
            r.ok() && r.stdout.contains("self-test: all "),
            "{board}: {r:?}"
        );
        ran.push(board);
    }
    loud(&format!("packaged binary ran on: {}", ran.join(", ")));
    assert!(ran.iter().any(|b| b == "x86_64"));
}

/// The feed follows openwrt/packages' Rust conventions and can be found
/// by `scripts/feeds` both as a src-link to openwrt-feed/ and as a src-git
/// of the whole repository.
#[test]
fn feed_makefile_conventions() {
    let mk = feed_makefile();
    assert_eq!(feed_var("PKG_NAME"), "cloudy");
    assert_eq!(feed_var("PKG_VERSION"), workspace_version());
    assert_eq!(feed_var("PKG_BUILD_DEPENDS"), "rust/host");
    for needle in [
        "include $(TOPDIR)/rules.mk",
        "include $(INCLUDE_DIR)/package.mk",
        "lang/rust/rust-package.mk",
        "$(eval $(call RustBinPackage,cloudy))",
        "$(eval $(call BuildPackage,cloudy))",
        "DEPENDS:=$(RUST_ARCH_DEPENDS) +kmod-tun",
        "$(INSTALL_BIN) ./files/cloudy.init $(1)/etc/init.d/cloudy",
        "$(INSTALL_CONF) ./files/cloudy.config $(1)/etc/config/cloudy",
        "$(1)/usr/sbin/cloudy",
    ] {
        assert!(mk.contains(needle), "feed Makefile lacks {needle}");
    }
    // Order of the header fields as in openwrt/packages.
    let pos = |s: &str| mk.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("include $(TOPDIR)/rules.mk") < pos("PKG_NAME:="));
    assert!(pos("PKG_RELEASE:=") < pos("PKG_MAINTAINER:="));
    assert!(pos("PKG_BUILD_DEPENDS:=") < pos("include $(INCLUDE_DIR)/package.mk"));
    assert!(pos("define Package/cloudy\n") < pos("define Package/cloudy/install"));
    // scripts/feeds indexes a Makefile that calls a *Package macro: the
    // repository's own Makefile must not, so a src-git of the repository
    // root finds only openwrt-feed/net/cloudy.
    let root_mk = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    for l in root_mk.lines() {
        assert!(
            !(l.contains("call ") && (l.contains("Package") || l.contains("Build/DefaultTargets"))),
            "root Makefile line looks like an OpenWrt package: {l}"
        );
    }
    // Offline builds: no git dependencies (`make test-cross` runs cargo vendor).
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    assert!(
        !lock.contains("source = \"git+"),
        "git dependency in Cargo.lock"
    );
}
