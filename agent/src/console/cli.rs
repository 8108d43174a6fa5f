//! The command line of the `cloudy` binary.
//!
//! `cloudy [-c CONFIG] [-s SOCKET] [--json] COMMAND [ARGS]`. Options may
//! come before or after the command; `--` ends them. Paths come from the
//! options, else from `CLOUDY_CONFIG` / `CLOUDY_SOCKET`, else the
//! defaults ([`DEFAULT_CONFIG_PATH`], [`DEFAULT_SOCKET_PATH`]).
//!
//! Exit status: 0 on success, 1 on failure, 2 on a usage error. A failure
//! prints one line to stderr starting with `cloudy: `; `check-config`
//! prints the configuration error itself as `PATH:LINE: message`, the
//! form editors jump to.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::format;
use super::proto::{Request, Response};
use super::server::call;
use super::DEFAULT_SOCKET_PATH;
use crate::config::{DEFAULT_CONFIG_PATH, DEFAULT_KEY_FILE};
use crate::keys::KeyFileState;
use crate::time::Duration;

/// How long `status`, `peers` and `pubkey` wait for the daemon, in all.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable naming the configuration file.
pub const ENV_CONFIG: &str = "CLOUDY_CONFIG";
/// Environment variable naming the control socket.
pub const ENV_SOCKET: &str = "CLOUDY_SOCKET";

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub json: bool,
    pub command: Command,
}

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ask the daemon; its answer is printed by [`format::show`] (text,
    /// or JSON with `--json`).
    Ask(Request),
    /// `pubkey`: from the key file, else from the daemon.
    Pubkey,
    Daemon,
    CheckConfig,
    /// `keygen [FILE]`.
    Keygen(Option<PathBuf>),
    Help,
    Version,
    /// `self-test`: built-in checks of wire formats and primitives.
    SelfTest,
    /// `authority init`: make this box the cloud's authority.
    AuthorityInit,
    /// `sign NAME KEY [ADDRESS/PREFIX ...]`: print a member certificate.
    Sign {
        name: String,
        key: String,
        addresses: Vec<(std::net::IpAddr, u8)>,
    },
    /// `join TOKEN`: standalone, see [`super::join`]; unset paths and port
    /// are the defaults (the key file: the config's `key_file`).
    Join {
        token: String,
        key: Option<PathBuf>,
        cert: Option<PathBuf>,
        name: Option<String>,
        port: Option<u16>,
    },
    /// `put`, `get`, `check`, `verify-cap`, `store` (see [`super::store`]).
    #[cfg(feature = "store")]
    Store(super::store::StoreCommand),
}

/// One console command: its name, arguments, help line, and how its words
/// become a [`Command`]. The command line, `cloudy help` and the usage
/// errors all come from [`COMMANDS`], so a new command is one entry there;
/// one that asks the daemon also needs its [`Request`] variant, the
/// daemon's answer (`runtime::Daemon::answer`) and, for a new kind of
/// answer, a [`Response`] variant that [`format::show`] prints.
pub struct CommandSpec {
    pub name: &'static str,
    /// The arguments as `help` shows them.
    pub args: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// Whether `--all` goes with it.
    pub takes_all: bool,
    /// Its own options, each taking a value (`--key PATH`).
    pub options: &'static [&'static str],
    parse: fn(&Words) -> Result<Command, UsageError>,
}

/// The words after a command's name, and the command flags given.
pub struct Words<'a> {
    pub name: &'a str,
    pub rest: &'a [&'a str],
    pub all: bool,
    /// The command's own options given, as (name, value).
    pub options: &'a [(&'a str, String)],
}

impl Words<'_> {
    /// The value of the command option `name`, if given (the last wins).
    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `command` if no words follow the name.
    fn none(&self, command: Command) -> Result<Command, UsageError> {
        if self.rest.is_empty() {
            Ok(command)
        } else {
            Err(UsageError(format!("{} takes no arguments", self.name)))
        }
    }
}

/// Command options that take no value (listed in a command's `options`
/// too).
const FLAGS: &[&str] = &["--repair"];

#[cfg(feature = "store")]
fn store_command(c: super::store::StoreCommand) -> Command {
    Command::Store(c)
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "daemon",
        args: "",
        summary: "run the agent in the foreground (procd starts this)",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::Daemon),
    },
    CommandSpec {
        name: "status",
        args: "",
        summary: "show this box's overlay status",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::Ask(Request::Status)),
    },
    CommandSpec {
        name: "peers",
        args: "",
        summary: "list the members of the cloud and how they are reached",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::Ask(Request::Peers)),
    },
    CommandSpec {
        name: "pubkey",
        args: "",
        summary: "print this box's public key",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::Pubkey),
    },
    CommandSpec {
        name: "publish",
        args: " NAME TYPE PORT [KEY=VALUE ...]",
        summary: "announce a service (TYPE as http or _http._tcp) by mDNS/DNS-SD",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [instance, ty, port, txt @ ..] => Ok(Command::Ask(Request::Publish {
                instance: instance_arg(instance)?,
                service_type: type_arg(ty)?,
                port: port_arg(port)?,
                txt: txt.iter().map(|t| txt_arg(t)).collect::<Result<_, _>>()?,
                host: None,
            })),
            _ => Err(UsageError(
                "publish needs NAME TYPE PORT [KEY=VALUE ...]".into(),
            )),
        },
    },
    CommandSpec {
        name: "unpublish",
        args: " NAME",
        summary: "withdraw a published service",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [instance] => Ok(Command::Ask(Request::Unpublish {
                instance: instance_arg(instance)?,
            })),
            _ => Err(UsageError("unpublish needs exactly one NAME".into())),
        },
    },
    CommandSpec {
        name: "search",
        args: " [TYPE] [HOST] [--all]",
        summary: "list services of this micro cloud (--all: all seen), by RTT and hops",
        takes_all: true,
        options: &[],
        parse: |w| {
            let (service_type, host) = match w.rest {
                [] => (None, None),
                [ty] => (Some(type_arg(ty)?), None),
                [ty, host] => (Some(type_arg(ty)?), Some(host.to_string())),
                _ => return Err(UsageError("search takes at most TYPE and HOST".into())),
            };
            Ok(Command::Ask(Request::Search {
                service_type,
                host,
                all: w.all,
            }))
        },
    },
    CommandSpec {
        name: "authority",
        args: " init",
        summary: "make this box the cloud's authority (it then signs the members)",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            ["init"] => Ok(Command::AuthorityInit),
            _ => Err(UsageError("authority takes one word: init".into())),
        },
    },
    CommandSpec {
        name: "sign",
        args: " NAME KEY [ADDRESS/PREFIX ...]",
        summary: "print a member certificate for public KEY (on the authority's box)",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [name, key, addresses @ ..] => Ok(Command::Sign {
                name: name.to_string(),
                key: key.to_string(),
                addresses: addresses
                    .iter()
                    .map(|a| cidr_arg(a))
                    .collect::<Result<_, _>>()?,
            }),
            _ => Err(UsageError(
                "sign needs NAME KEY [ADDRESS/PREFIX ...]".into(),
            )),
        },
    },
    CommandSpec {
        name: "invite",
        args: " NAME [ADDRESS/PREFIX ...] [--endpoint IP:PORT[,IP:PORT]] [--hours N]",
        summary: "print a one-time token for a new box (on the authority's box; 24 h)",
        takes_all: false,
        options: &["--endpoint", "--hours"],
        parse: |w| match w.rest {
            [name, addresses @ ..] => Ok(Command::Ask(Request::Invite {
                name: name.to_string(),
                addresses: addresses
                    .iter()
                    .map(|a| cidr_arg(a))
                    .collect::<Result<_, _>>()?,
                endpoints: match w.option("--endpoint") {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(|e| {
                            e.parse::<std::net::SocketAddr>().map_err(|_| {
                                UsageError(format!("--endpoint takes IP:PORT, got '{e}'"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                },
                hours: match w.option("--hours") {
                    None => 24,
                    Some(h) => match h.parse::<u32>() {
                        Ok(h) if (1..=24 * 30).contains(&h) => h,
                        _ => return Err(UsageError(format!("--hours takes 1-720, got '{h}'"))),
                    },
                },
            })),
            _ => Err(UsageError("invite needs a NAME".into())),
        },
    },
    CommandSpec {
        name: "revoke",
        args: " NAME|KEY",
        summary: "take a member out of the cloud, on every box (on the authority's box)",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [member] => Ok(Command::Ask(Request::Revoke {
                member: member.to_string(),
            })),
            _ => Err(UsageError("revoke needs one member NAME or KEY".into())),
        },
    },
    #[cfg(feature = "store")]
    CommandSpec {
        name: "put",
        args: " FILE|-",
        summary: "store a file on the micro cloud (K-of-N, encrypted here); prints its capability",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [input] => Ok(store_command(super::store::StoreCommand::Put {
                input: input.to_string(),
            })),
            _ => Err(UsageError("put needs one FILE, or - for stdin".into())),
        },
    },
    #[cfg(feature = "store")]
    CommandSpec {
        name: "get",
        args: " CAP [-o FILE]",
        summary: "fetch a stored file (checked as it streams) to stdout or FILE",
        takes_all: false,
        options: &["-o", "--output"],
        parse: |w| match w.rest {
            [cap] => Ok(store_command(super::store::StoreCommand::Get {
                cap: cap.to_string(),
                output: w.option("-o").or(w.option("--output")).map(PathBuf::from),
            })),
            _ => Err(UsageError("get needs one capability (cloudy:chk:...)".into())),
        },
    },
    #[cfg(feature = "store")]
    CommandSpec {
        name: "check",
        args: " CAP [--repair]",
        summary: "check a stored file's shares on every box (renews leases); --repair re-creates missing ones",
        takes_all: false,
        options: &["--repair"],
        parse: |w| match w.rest {
            [cap] => Ok(store_command(super::store::StoreCommand::Check {
                cap: cap.to_string(),
                repair: w.option("--repair").is_some(),
            })),
            _ => Err(UsageError("check needs one capability".into())),
        },
    },
    #[cfg(feature = "store")]
    CommandSpec {
        name: "verify-cap",
        args: " CAP",
        summary: "print the capability that checks and repairs a file but cannot read it",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [cap] => Ok(store_command(super::store::StoreCommand::VerifyCap {
                cap: cap.to_string(),
            })),
            _ => Err(UsageError("verify-cap needs one read capability".into())),
        },
    },
    #[cfg(feature = "store")]
    CommandSpec {
        name: "store",
        args: "",
        summary: "this box's store: used and quota, shares held, transfers served",
        takes_all: false,
        options: &[],
        parse: |w| w.none(store_command(super::store::StoreCommand::Info)),
    },
    CommandSpec {
        name: "keygen",
        args: " [FILE]",
        summary: "create a private key file (default: key_file) and print its public key",
        takes_all: false,
        options: &[],
        parse: |w| match w.rest {
            [] => Ok(Command::Keygen(None)),
            [file] => Ok(Command::Keygen(Some(PathBuf::from(file)))),
            _ => Err(UsageError("keygen takes at most one FILE".into())),
        },
    },
    CommandSpec {
        name: "join",
        args: " TOKEN [--name NAME] [--key PATH] [--cert PATH] [--port PORT]",
        summary: "join a cloud with an invitation: writes the key, certificate and config (-c)",
        takes_all: false,
        options: &["--name", "--key", "--cert", "--port"],
        parse: |w| match w.rest {
            [token] => Ok(Command::Join {
                token: token.to_string(),
                key: w.option("--key").map(PathBuf::from),
                cert: w.option("--cert").map(PathBuf::from),
                name: w.option("--name").map(String::from),
                port: w.option("--port").map(port_arg).transpose()?,
            }),
            _ => Err(UsageError("join needs exactly one TOKEN".into())),
        },
    },
    CommandSpec {
        name: "check-config",
        args: "",
        summary: "check the configuration file and show the first error",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::CheckConfig),
    },
    CommandSpec {
        name: "self-test",
        args: "",
        summary: "check wire formats and crypto on this box (exit 1 on failure)",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::SelfTest),
    },
    CommandSpec {
        name: "version",
        args: "",
        summary: "print the version",
        takes_all: false,
        options: &[],
        parse: |w| w.none(Command::Version),
    },
    CommandSpec {
        name: "help",
        args: "",
        summary: "show this help",
        takes_all: false,
        options: &[],
        // `help anything` is help.
        parse: |_| Ok(Command::Help),
    },
];

/// A malformed command line; shown as `cloudy: MESSAGE (try 'cloudy help')`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The help text.
pub fn usage() -> String {
    let mut s = String::from(
        "usage: cloudy [-c CONFIG] [-s SOCKET] [--json] COMMAND [ARGS]\n\ncommands:\n",
    );
    for c in COMMANDS {
        let left = format!("{}{}", c.name, c.args);
        let what = c.summary;
        if left.len() < 16 {
            s.push_str(&format!("  {left:<16}{what}\n"));
        } else {
            s.push_str(&format!("  {left}\n  {:<16}{what}\n", ""));
        }
    }
    s.push_str(&format!(
        "\noptions:\n\
         \x20 -c, --config CONFIG  configuration file (default {DEFAULT_CONFIG_PATH}, or ${ENV_CONFIG})\n\
         \x20 -s, --socket SOCKET  control socket (default {DEFAULT_SOCKET_PATH}, or ${ENV_SOCKET})\n\
         \x20     --json           print status, peers and search as JSON\n\
         \x20     --all            search: also services outside this micro cloud\n\
         \x20 -h, --help           show this help\n\
         \x20     --version        print the version\n"
    ));
    s
}

/// Parses the arguments after the program name, with paths defaulting to
/// the environment.
pub fn parse_args(args: &[String]) -> Result<Cli, UsageError> {
    parse_args_with_env(args, &|k| std::env::var_os(k))
}

/// [`parse_args`] with the environment given (for tests).
pub fn parse_args_with_env(
    args: &[String],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Cli, UsageError> {
    let mut config: Option<PathBuf> = None;
    let mut socket: Option<PathBuf> = None;
    let mut json = false;
    let mut help = false;
    let mut version = false;
    let mut all = false;
    let mut words: Vec<&str> = Vec::new();
    let mut command_options: Vec<(&str, String)> = Vec::new();
    let mut it = args.iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        let arg = arg.as_str();
        if options_done || !arg.starts_with('-') || arg == "-" {
            words.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        let mut value = || -> Result<String, UsageError> {
            let v = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .map(String::as_str)
                    .ok_or_else(|| UsageError(format!("option {name} needs a value")))?,
            };
            if v.is_empty() {
                return Err(UsageError(format!("option {name} needs a value")));
            }
            Ok(v.to_string())
        };
        match name {
            "--" => options_done = true,
            "-c" | "--config" => config = Some(PathBuf::from(value()?)),
            "-s" | "--socket" => socket = Some(PathBuf::from(value()?)),
            _ if FLAGS.contains(&name) && inline.is_none() => {
                command_options.push((name, String::new()))
            }
            _ if COMMANDS.iter().any(|c| c.options.contains(&name)) => {
                command_options.push((name, value()?))
            }
            _ if inline.is_some() => {
                return Err(UsageError(format!("option {name} takes no value")))
            }
            "--json" => json = true,
            "--all" => all = true,
            "-h" | "--help" => help = true,
            "--version" => version = true,
            _ => return Err(UsageError(format!("unknown option {arg}"))),
        }
    }
    let from_env = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let config = config
        .or_else(|| from_env(ENV_CONFIG))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let socket = socket
        .or_else(|| from_env(ENV_SOCKET))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_PATH));
    let cli = |command| {
        Ok(Cli {
            config: config.clone(),
            socket: socket.clone(),
            json,
            command,
        })
    };
    if help {
        return cli(Command::Help);
    }
    if version {
        return cli(Command::Version);
    }
    let Some((&name, rest)) = words.split_first() else {
        return Err(UsageError("no command given".into()));
    };
    let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
        return Err(UsageError(format!("unknown command '{name}'")));
    };
    if all && !spec.takes_all {
        let with: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.takes_all)
            .map(|c| c.name)
            .collect();
        return Err(UsageError(format!(
            "--all only goes with {}",
            with.join(", ")
        )));
    }
    if let Some((option, _)) = command_options
        .iter()
        .find(|(o, _)| !spec.options.contains(o))
    {
        let with: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.options.contains(option))
            .map(|c| c.name)
            .collect();
        return Err(UsageError(format!(
            "{option} only goes with {}",
            with.join(", ")
        )));
    }
    cli((spec.parse)(&Words {
        name,
        rest,
        all,
        options: &command_options,
    })?)
}

fn cidr_arg(s: &str) -> Result<(std::net::IpAddr, u8), UsageError> {
    crate::config::schema::cidr(s)
        .map(|c| (c.addr, c.prefix))
        .map_err(|e| UsageError(format!("bad ADDRESS/PREFIX: {e}")))
}

fn instance_arg(s: &str) -> Result<String, UsageError> {
    if s.is_empty() || s.len() > 63 || s.chars().any(char::is_control) {
        return Err(UsageError(
            "a service NAME is 1-63 bytes without control characters".into(),
        ));
    }
    Ok(s.to_string())
}

fn type_arg(s: &str) -> Result<String, UsageError> {
    crate::config::uci::normalize_service_type(s)
        .map_err(|e| UsageError(format!("bad service TYPE: expected {e}")))
}

fn port_arg(s: &str) -> Result<u16, UsageError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(UsageError(format!("PORT must be 1-65535, got '{s}'"))),
    }
}

fn txt_arg(s: &str) -> Result<String, UsageError> {
    if s.is_empty() || s.starts_with('=') || s.len() > 255 {
        return Err(UsageError(format!(
            "TXT entries are KEY=VALUE (or KEY), at most 255 bytes, got '{s}'"
        )));
    }
    Ok(s.to_string())
}

/// How a command failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Printed as `cloudy: MESSAGE`.
    Error(String),
    /// Printed as it is (a `PATH:LINE: message` configuration error).
    Plain(String),
}

impl Failure {
    /// The one stderr line.
    pub fn line(&self) -> String {
        let text = match self {
            Failure::Error(m) => format!("cloudy: {m}"),
            Failure::Plain(m) => m.clone(),
        };
        text.replace(['\n', '\r'], " ")
    }
}

fn err(message: impl Into<String>) -> Failure {
    Failure::Error(message.into())
}

/// The whole `cloudy` command: `args` as `std::env::args` gives them,
/// program name first.
pub fn main(args: Vec<String>) -> ExitCode {
    let cli = match parse_args(args.get(1..).unwrap_or_default()) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln_quiet(&format!("cloudy: {e} (try 'cloudy help')"));
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match run(&cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln_quiet(&f.line());
            ExitCode::from(1)
        }
    }
}

/// Writes a line to stderr; a closed stderr has nowhere to be reported.
fn eprintln_quiet(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Writes to stdout; a reader that went away (`| head`) is not an error
/// worth a message, so write errors are ignored.
fn emit(out: &mut dyn Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Runs a parsed command, printing results to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match &cli.command {
        Command::Help => emit(out, &usage()),
        Command::Version => emit(out, &format!("cloudy {}\n", crate::VERSION)),
        Command::Daemon => {
            quark::lock_memory_if_needed();
            crate::runtime::run_daemon(&cli.config, &cli.socket).map_err(Failure::Error)?
        }
        Command::SelfTest => {
            if !crate::selftest::run(out) {
                return Err(err("self-test failed"));
            }
        }
        Command::CheckConfig => {
            let config =
                crate::config::uci::load(&cli.config).map_err(|e| Failure::Plain(e.to_string()))?;
            let key_file = &config.agent.key_file;
            let key = match crate::keys::check_key_file(key_file).map_err(|e| err(e.to_string()))? {
                KeyFileState::Valid(public) => {
                    config.check_own_key(&public).map_err(err)?;
                    // With an authority: the certificate (for this key,
                    // this cloud, valid), the revocation list, the
                    // authority key, as the daemon reads them.
                    match crate::runtime::trust::load(&config, &public).map_err(err)? {
                        crate::runtime::trust::Loaded {
                            engine: Some(t), ..
                        } if t.cert.is_some() => "key and certificate ok".to_string(),
                        crate::runtime::trust::Loaded {
                            engine: Some(_), ..
                        } => "key ok; no certificate yet".to_string(),
                        _ => "key ok".to_string(),
                    }
                }
                KeyFileState::Missing => format!(
                    "no key file yet: the daemon's first start creates {}",
                    key_file.display()
                ),
            };
            let store = check_store(config.store.as_ref()).map_err(err)?;
            let n = config.peers.len();
            let peers = if n == 1 { "peer" } else { "peers" };
            emit(
                out,
                &format!("ok: {} ({n} {peers}; {key}{store})\n", cli.config.display()),
            );
        }
        Command::Keygen(file) => {
            let path = match file {
                Some(f) => f.clone(),
                None => configured_key_file(&cli.config),
            };
            let public = keygen(&path)?;
            emit(out, &format!("{public}\n"));
        }
        Command::Pubkey => emit(out, &format!("{}\n", pubkey(cli)?)),
        Command::AuthorityInit => {
            let text = super::authority::init(&cli.config).map_err(err)?;
            emit(out, &format!("{text}\n"));
        }
        Command::Sign {
            name,
            key,
            addresses,
        } => {
            let text = super::authority::sign(&cli.config, name, key, addresses).map_err(err)?;
            emit(out, &format!("{text}\n"));
        }
        Command::Join {
            token,
            key,
            cert,
            name,
            port,
        } => {
            let mut o = super::join::JoinOptions::new(&cli.config);
            o.key_file = key
                .clone()
                .unwrap_or_else(|| configured_key_file(&cli.config));
            if let Some(c) = cert {
                o.cert_file = c.clone();
            }
            o.name = name.clone();
            if let Some(p) = port {
                o.listen_port = *p;
            }
            emit(out, &super::join::join(token, &o).map_err(err)?);
        }
        #[cfg(feature = "store")]
        Command::Store(c) => super::store::run(cli, c, out)?,
        Command::Ask(request) => {
            let mut answer = ask(cli, request)?;
            // A browse that just started: wait once for the answers.
            if let Some(ms) = answer.retry_after_ms() {
                let wait = u64::from(ms.min(SEARCH_MAX_WAIT_MS));
                std::thread::sleep(std::time::Duration::from_millis(wait));
                answer = ask(cli, request)?;
            }
            match format::show(&answer, cli.json) {
                Some(text) => emit(out, &text),
                None => return Err(unexpected(answer)),
            }
        }
    }
    Ok(())
}

/// Longest wait `search` accepts from the daemon before asking again.
pub const SEARCH_MAX_WAIT_MS: u32 = 3000;

/// Intel Quark X1000 (Galileo) erratum: a LOCK-prefixed instruction that
/// page-faults can hang or crash the core. GCC's answer is
/// `-momit-lock-prefix`, which LLVM lacks; ours is to lock every page of
/// the daemon in memory (`mlockall(MCL_CURRENT | MCL_FUTURE)`) before it
/// starts, so no locked instruction (atomics, `Arc`, the allocator) can
/// fault on a page that is not present.
///
/// Applied only on 32-bit x86 when `/proc/cpuinfo` names a Quark CPU, or
/// when `CLOUDY_QUARK_WORKAROUND=1` forces it (`=0` turns it off). Limits:
/// it costs the binary's and heap's size in resident RAM (about 2 MiB of
/// the Galileo's 256); it needs `CAP_IPC_LOCK` (procd runs cloudy as root);
/// copy-on-write faults after `fork` are not covered (the daemon does not
/// fork); a failure is logged and the daemon runs on unprotected.
pub mod quark {
    /// Environment variable forcing the workaround on (`1`) or off (`0`).
    pub const ENV_FORCE: &str = "CLOUDY_QUARK_WORKAROUND";
    const CPUINFO: &str = "/proc/cpuinfo";

    /// Whether a `/proc/cpuinfo` text describes a Quark CPU (its
    /// `model name` line, e.g. `Quark SoC X1000`).
    pub fn is_quark(cpuinfo: &str) -> bool {
        cpuinfo.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim() == "model name" && v.to_ascii_lowercase().contains("quark")
            })
        })
    }

    /// Whether to lock memory: the override if set, else the CPU test
    /// (on 32-bit x86 only; other CPUs have no such erratum).
    pub fn wanted(force: Option<&str>, cpuinfo: impl FnOnce() -> String) -> bool {
        match force {
            Some("1") => true,
            Some("0") => false,
            _ => cfg!(target_arch = "x86") && is_quark(&cpuinfo()),
        }
    }

    /// Locks all current and future pages when [`wanted`]; logs the outcome.
    pub fn lock_memory_if_needed() {
        let force = std::env::var(ENV_FORCE).ok();
        let read = || {
            let mut text = String::new();
            if let Ok(f) = std::fs::File::open(CPUINFO) {
                // Bounded read: the first CPU's block is at the start.
                let _ = std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, 64 * 1024),
                    &mut text,
                );
            }
            text
        };
        if !wanted(force.as_deref(), read) {
            return;
        }
        match crate::sys::lock_all_memory() {
            Ok(()) => crate::info!("Quark CPU: memory locked (LOCK-prefix erratum workaround)"),
            Err(e) => crate::error!(
                "Quark CPU: mlockall failed, running without the LOCK-prefix erratum workaround: {e}"
            ),
        }
    }
}

/// The config's key file, or the default one if the config is unreadable.
/// What `check-config` says of `config store`: nothing without one; its
/// path checked as the daemon's start checks it when enabled (a missing
/// or read-only directory is an error).
fn check_store(store: Option<&crate::config::StoreConfig>) -> Result<String, String> {
    let Some(st) = store else {
        return Ok(String::new());
    };
    if cfg!(not(feature = "store")) {
        return Ok("; store section ignored: this build has no store".into());
    }
    let shares = format!(
        "puts {}-of-{}, happy {}",
        st.shares_needed, st.shares_total, st.shares_happy
    );
    match st.serving_path() {
        None => Ok(format!("; store off, a client only ({shares})")),
        // A store directory that is not usable now (a USB disk not
        // mounted yet) is a warning, not an error: the daemon runs the
        // overlay without the store and tries it again every 30 s.
        Some(path) => match st.check_path() {
            Ok(()) => Ok(format!(
                "; store {} writable, quota {}, port {}, {shares}",
                path.display(),
                crate::config::schema::format_size(st.quota),
                st.port
            )),
            Err(why) => {
                eprintln_quiet(&format!(
                    "cloudy: warning: {why}: the store stays off until it is usable (the overlay runs without it)"
                ));
                Ok(format!(
                    "; store {} NOT usable yet, {shares}",
                    path.display()
                ))
            }
        },
    }
}

fn configured_key_file(config: &Path) -> PathBuf {
    crate::config::uci::load(config)
        .map(|c| c.agent.key_file)
        .unwrap_or_else(|_| PathBuf::from(DEFAULT_KEY_FILE))
}

/// Creates a new private key at `path` (never overwriting one) and returns
/// the public key in base64.
fn keygen(path: &Path) -> Result<String, Failure> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(err(format!(
            "{} already exists (remove it first to make a new key)",
            path.display()
        )));
    }
    // write_private creates missing directories (0700) and the file (0600).
    let private = crate::keys::try_generate_private().map_err(|e| {
        err(format!(
            "cannot generate a key: no randomness from the system: {e}"
        ))
    })?;
    crate::keys::write_private(path, &private).map_err(|e| err(e.to_string()))?;
    Ok(crate::keys::encode_public(&crate::keys::public_key_of(
        &private,
    )))
}

/// The public key from the key file, else from the daemon.
fn pubkey(cli: &Cli) -> Result<String, Failure> {
    let key_file = configured_key_file(&cli.config);
    let file_error = match crate::keys::read_private(&key_file) {
        Ok(private) => {
            return Ok(crate::keys::encode_public(&crate::keys::public_key_of(
                &private,
            )))
        }
        Err(e) => e.to_string(),
    };
    match call_daemon(cli, &Request::PublicKey, &BUSY_BACKOFF_MS) {
        Ok(Response::PublicKey(k)) => Ok(crate::keys::encode_public(&k)),
        // The key error names the file.
        Ok(Response::Error(m)) => Err(err(format!("{file_error}, and the daemon answered: {m}"))),
        Ok(other) => Err(unexpected(other)),
        Err(e) => Err(err(format!("{file_error}, and {e}"))),
    }
}

pub(super) fn ask(cli: &Cli, request: &Request) -> Result<Response, Failure> {
    match call_daemon(cli, request, &BUSY_BACKOFF_MS) {
        Ok(Response::Error(m)) => Err(err(format!("the daemon answered: {m}"))),
        Ok(r) => Ok(r),
        Err(e) => Err(err(e)),
    }
}

/// Pauses, in milliseconds, before each new try while the daemon answers
/// [`Response::Busy`]: six tries within about 2.5 s, enough for slow
/// clients holding every console slot to reach their deadline
/// (`limits::CONSOLE_REQUEST_TIMEOUT`).
pub const BUSY_BACKOFF_MS: [u64; 5] = [100, 200, 400, 800, 1000];

/// [`call`] with `request`, on a new connection after each pause of
/// `backoff` while the daemon is busy (saying so on stderr). The error is
/// the line to print.
fn call_daemon(cli: &Cli, request: &Request, backoff: &[u64]) -> Result<Response, String> {
    let mut pauses = backoff.iter();
    loop {
        match call(&cli.socket, request, DAEMON_TIMEOUT) {
            Ok(Response::Busy) => {}
            Ok(r) => return Ok(r),
            Err(e) => return Err(e.to_string()),
        }
        let Some(&ms) = pauses.next() else {
            let waited: u64 = backoff.iter().sum();
            return Err(format!(
                "the daemon is busy (every console slot taken); gave up after {} tries in {}.{} s",
                backoff.len() + 1,
                waited / 1000,
                waited % 1000 / 100
            ));
        };
        eprintln_quiet("cloudy: daemon busy, retrying");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn unexpected(r: Response) -> Failure {
    let what = match r {
        Response::Status(_) => "status",
        Response::Peers(_) => "peers",
        Response::PublicKey(_) => "public key",
        Response::Error(_) => "error",
        Response::Ok(_) => "ok",
        Response::Services { .. } => "services",
        Response::Busy => "busy",
    };
    err(format!("unexpected answer from the daemon ({what})"))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::console::server::ControlServer;
    use crate::time::Instant;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn parse(s: &str) -> Result<Cli, UsageError> {
        parse_args_with_env(&args(s), &no_env)
    }

    fn command(s: &str) -> Command {
        parse(s).unwrap().command
    }

    #[test]
    fn defaults() {
        let cli = parse("status").unwrap();
        assert_eq!(
            cli,
            Cli {
                config: PathBuf::from(DEFAULT_CONFIG_PATH),
                socket: PathBuf::from(DEFAULT_SOCKET_PATH),
                json: false,
                command: Command::Ask(Request::Status)
            }
        );
    }

    #[test]
    fn commands() {
        assert_eq!(command("daemon"), Command::Daemon);
        assert_eq!(command("check-config"), Command::CheckConfig);
        assert_eq!(command("keygen"), Command::Keygen(None));
        assert_eq!(
            command("keygen /tmp/k"),
            Command::Keygen(Some("/tmp/k".into()))
        );
        assert_eq!(command("pubkey"), Command::Pubkey);
        assert_eq!(command("peers"), Command::Ask(Request::Peers));
        assert_eq!(command("status"), Command::Ask(Request::Status));
        assert_eq!(command("help"), Command::Help);
        assert_eq!(command("help peers"), Command::Help);
        assert_eq!(command("-h"), Command::Help);
        assert_eq!(command("peers --help"), Command::Help);
        assert_eq!(command("--version"), Command::Version);
        assert_eq!(command("version"), Command::Version);
        assert_eq!(command("self-test"), Command::SelfTest);
    }

    #[test]
    fn self_test_command_passes() {
        let dir = temp_dir("selftest");
        let (r, out) = run_capture(&cli_in(&dir, Command::SelfTest, false));
        assert_eq!(r, Ok(()), "{out}");
        assert!(
            out.lines().last().unwrap_or("").contains("checks ok"),
            "{out}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn quark_detection() {
        let quark = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Quark SoC X1000\n";
        let other = "processor\t: 0\nmodel name\t: Intel(R) Atom(TM) CPU\nflags\t: quark-ish\n";
        assert!(quark::is_quark(quark));
        assert!(!quark::is_quark(other) && !quark::is_quark(""));
        assert!(quark::wanted(Some("1"), String::new));
        assert!(!quark::wanted(Some("0"), || quark.to_string()));
        assert_eq!(
            quark::wanted(None, || quark.to_string()),
            cfg!(target_arch = "x86")
        );
        assert!(!quark::wanted(None, || other.to_string()));
    }

    #[test]
    fn options() {
        let cli = parse("-c /a -s /b --json peers").unwrap();
        assert_eq!(
            (cli.config, cli.socket, cli.json),
            ("/a".into(), "/b".into(), true)
        );
        let cli = parse("peers --json --config=/x --socket /y").unwrap();
        assert_eq!(
            (cli.config, cli.socket, cli.json),
            ("/x".into(), "/y".into(), true)
        );
        let cli = parse("keygen -- -odd-name").unwrap();
        assert_eq!(cli.command, Command::Keygen(Some("-odd-name".into())));
    }

    #[test]
    fn environment() {
        let env = |k: &str| match k {
            ENV_CONFIG => Some(OsString::from("/env/config")),
            ENV_SOCKET => Some(OsString::from("/env/sock")),
            _ => None,
        };
        let cli = parse_args_with_env(&args("status"), &env).unwrap();
        assert_eq!(
            (cli.config, cli.socket),
            ("/env/config".into(), "/env/sock".into())
        );
        let cli = parse_args_with_env(&args("-s /flag status"), &env).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/flag"));
        let empty = |_: &str| Some(OsString::new());
        let cli = parse_args_with_env(&args("status"), &empty).unwrap();
        assert_eq!(cli.socket, PathBuf::from(DEFAULT_SOCKET_PATH));
    }

    #[test]
    fn usage_errors() {
        let e = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(e(""), "no command given");
        assert_eq!(e("frobnicate"), "unknown command 'frobnicate'");
        assert_eq!(e("--frob status"), "unknown option --frob");
        assert_eq!(e("status -c"), "option -c needs a value");
        assert_eq!(e("--config= status"), "option --config needs a value");
        assert_eq!(e("--json=1 status"), "option --json takes no value");
        assert_eq!(e("status now"), "status takes no arguments");
        assert_eq!(e("keygen a b"), "keygen takes at most one FILE");
        assert_eq!(e("-json status"), "unknown option -json");
    }

    #[test]
    fn join_command() {
        let join =
            |token: &str, key: Option<&str>, cert: Option<&str>, name: Option<&str>, port| {
                Command::Join {
                    token: token.into(),
                    key: key.map(PathBuf::from),
                    cert: cert.map(PathBuf::from),
                    name: name.map(String::from),
                    port,
                }
            };
        assert_eq!(
            command("join cloudy1-x"),
            join("cloudy1-x", None, None, None, None)
        );
        let cli = parse("-c /tmp/c join T --key /k --cert=/c --name box2 --port 7000").unwrap();
        assert_eq!(cli.config, PathBuf::from("/tmp/c"));
        assert_eq!(
            cli.command,
            join("T", Some("/k"), Some("/c"), Some("box2"), Some(7000))
        );
        assert_eq!(
            command("--name a join T --name b"),
            join("T", None, None, Some("b"), None)
        );
        let e = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(e("join"), "join needs exactly one TOKEN");
        assert_eq!(e("join a b"), "join needs exactly one TOKEN");
        assert_eq!(e("join T --key"), "option --key needs a value");
        assert_eq!(e("join T --port 0"), "PORT must be 1-65535, got '0'");
        assert_eq!(e("status --key /k"), "--key only goes with join");
    }

    /// `join` end to end through the command line, against a token
    /// nobody answers: a clear error, nothing written.
    #[test]
    fn join_command_reports_an_expired_token() {
        let dir = temp_dir("join");
        let token = crate::trust::invite::Token {
            id: 1,
            secret: [0; 32],
            inviter: [1; 32],
            expiry: 1,
            endpoints: vec!["127.0.0.1:9".parse().unwrap()],
        };
        let command = Command::Join {
            token: token.to_text().unwrap(),
            key: Some(dir.join("key")),
            cert: None,
            name: None,
            port: None,
        };
        let (r, out) = run_capture(&cli_in(&dir, command, false));
        let line = r.unwrap_err().line();
        assert!(
            line.starts_with("cloudy: the invitation has expired"),
            "{line}"
        );
        assert!(out.is_empty() && !dir.join("key").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn discovery_commands() {
        assert_eq!(
            command("publish web http 8080 path=/ v=1"),
            Command::Ask(Request::Publish {
                instance: "web".into(),
                service_type: "_http._tcp".into(),
                port: 8080,
                txt: vec!["path=/".into(), "v=1".into()],
                host: None,
            })
        );
        assert_eq!(
            command("publish ssh _SSH._tcp 22"),
            Command::Ask(Request::Publish {
                instance: "ssh".into(),
                service_type: "_ssh._tcp".into(),
                port: 22,
                txt: vec![],
                host: None,
            })
        );
        let unpublish = |i: &str| {
            Command::Ask(Request::Unpublish {
                instance: i.to_string(),
            })
        };
        assert_eq!(command("unpublish web"), unpublish("web"));
        let search = |t: Option<&str>, h: Option<&str>, all| {
            Command::Ask(Request::Search {
                service_type: t.map(String::from),
                host: h.map(String::from),
                all,
            })
        };
        assert_eq!(command("search"), search(None, None, false));
        assert_eq!(command("search --all"), search(None, None, true));
        assert_eq!(
            command("--json search http b"),
            search(Some("_http._tcp"), Some("b"), false)
        );
        assert_eq!(
            command("search _ipp._tcp --all"),
            search(Some("_ipp._tcp"), None, true)
        );
        assert!(parse("--json search").unwrap().json);
        let e = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(e("publish web http 0"), "PORT must be 1-65535, got '0'");
        assert_eq!(
            e("publish web http 70000"),
            "PORT must be 1-65535, got '70000'"
        );
        assert!(e("publish web _http._xyz 80").starts_with("bad service TYPE"));
        assert!(e("publish web http 80 =x").starts_with("TXT entries are KEY=VALUE"));
        assert_eq!(
            e("publish web http"),
            "publish needs NAME TYPE PORT [KEY=VALUE ...]"
        );
        assert_eq!(e("unpublish"), "unpublish needs exactly one NAME");
        assert_eq!(e("unpublish a b"), "unpublish needs exactly one NAME");
        assert_eq!(e("search a b c"), "search takes at most TYPE and HOST");
        assert!(e("search !!").starts_with("bad service TYPE"));
        assert_eq!(e("status --all"), "--all only goes with search");
    }

    #[test]
    fn help_lists_every_command() {
        let u = usage();
        for c in COMMANDS {
            assert!(
                u.lines().any(|l| l.trim_start().starts_with(c.name)),
                "{} missing",
                c.name
            );
        }
        assert!(u.contains(DEFAULT_SOCKET_PATH) && u.contains(DEFAULT_CONFIG_PATH));
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cloudy-cli-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn cli_in(dir: &Path, command: Command, json: bool) -> Cli {
        Cli {
            config: dir.join("no-config"),
            socket: dir.join("s.sock"),
            json,
            command,
        }
    }

    fn run_capture(cli: &Cli) -> (Result<(), Failure>, String) {
        let mut out = Vec::new();
        let r = run(cli, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn version_and_help_output() {
        let dir = temp_dir("version");
        let (r, out) = run_capture(&cli_in(&dir, Command::Version, false));
        assert_eq!((r, out), (Ok(()), format!("cloudy {}\n", crate::VERSION)));
        let (r, out) = run_capture(&cli_in(&dir, Command::Help, false));
        assert!(r.is_ok() && out.starts_with("usage: cloudy"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn daemon_unreachable() {
        let dir = temp_dir("unreachable");
        let (r, out) = run_capture(&cli_in(&dir, Command::Ask(Request::Status), false));
        let line = r.unwrap_err().line();
        assert_eq!(
            line,
            format!(
                "cloudy: cannot reach the daemon at {}: No such file or directory (is it running?)",
                dir.join("s.sock").display()
            )
        );
        assert!(out.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn check_config_missing_file() {
        let dir = temp_dir("check");
        let (r, out) = run_capture(&cli_in(&dir, Command::CheckConfig, false));
        match r {
            Err(Failure::Plain(m)) => assert!(m.contains("no-config"), "{m}"),
            r => panic!("unexpected {r:?}"),
        }
        assert!(out.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// check-config reads the key file as the daemon will, and refuses a
    /// peer holding the box's own key.
    #[test]
    fn check_config_checks_the_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("checkkey");
        let key = dir.join("key");
        let config = dir.join("cloudy");
        let write_config = |peer_key: &str| {
            let text = format!(
                "config agent\n\toption name 'a'\n\toption cloud 'c'\n\toption key_file '{}'\n\
                 config peer 'b'\n\toption public_key '{peer_key}'\n",
                key.display()
            );
            std::fs::write(&config, text).unwrap();
        };
        let other = crate::keys::encode_public(&crate::keys::public_key_of(&[9; 32]));
        write_config(&other);
        let mut cli = cli_in(&dir, Command::CheckConfig, false);
        cli.config = config.clone();
        let check = |cli: &Cli| match run_capture(cli) {
            (Ok(()), out) => Ok(out),
            (Err(f), _) => Err(f.line()),
        };
        let out = check(&cli).unwrap();
        assert!(out.contains("no key file yet"), "{out}");
        std::fs::create_dir(&key).unwrap();
        assert!(check(&cli).unwrap_err().contains("is a directory"));
        std::fs::remove_dir(&key).unwrap();
        crate::keys::write_private(&key, &[7; 32]).unwrap();
        assert!(check(&cli).unwrap().contains("key ok"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check(&cli).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_config(&crate::keys::encode_public(&crate::keys::public_key_of(
            &[7; 32],
        )));
        let e = check(&cli).unwrap_err();
        assert!(
            e.contains("peer 'b' holds this box's own public key"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// check-config checks an enabled store's directory as the daemon's
    /// start will, and says what it found.
    #[test]
    fn check_config_checks_the_store_path() {
        let dir = temp_dir("checkstore");
        let disk = dir.join("sda1");
        let config = dir.join("cloudy");
        let mut cli = cli_in(&dir, Command::CheckConfig, false);
        cli.config = config.clone();
        let check = |store: &str| {
            let text = format!(
                "config agent\n\toption key_file '{}'\n{store}",
                dir.join("key").display()
            );
            std::fs::write(&config, text).unwrap();
            match run_capture(&cli) {
                (Ok(()), out) => Ok(out),
                (Err(f), _) => Err(f.line()),
            }
        };
        let enabled = format!(
            "config store\n\toption path '{}'\n\toption quota 2048M\n",
            disk.display()
        );
        if cfg!(feature = "store") {
            // Not usable yet (no disk, a file): a warning on stderr, and
            // the line says so; the daemon runs and retries the store.
            let not_usable = format!("store {} NOT usable yet", disk.display());
            assert!(check(&enabled).unwrap().contains(&not_usable));
            std::fs::write(&disk, "").unwrap();
            assert!(check(&enabled).unwrap().contains(&not_usable));
            std::fs::remove_file(&disk).unwrap();
            std::fs::create_dir(&disk).unwrap();
            let out = check(&enabled).unwrap();
            assert!(
                out.ends_with(&format!(
                    "; store {} writable, quota 2G, port 6557, puts 3-of-10, happy 7)\n",
                    disk.display()
                )),
                "{out}"
            );
        } else {
            // Portable configs: read, never served by this build.
            let out = check(&enabled).unwrap();
            assert!(
                out.ends_with("; store section ignored: this build has no store)\n"),
                "{out}"
            );
        }
        // Off: no path to check, whether it exists or not.
        let off = format!(
            "config store\n\toption enabled 0\n\toption path '{}'\n\toption shares_total 5\n\
             \toption shares_happy 4\n",
            dir.join("gone").display()
        );
        let out = check(&off).unwrap();
        let want = if cfg!(feature = "store") {
            "; store off, a client only (puts 3-of-5, happy 4))\n"
        } else {
            "; store section ignored: this build has no store)\n"
        };
        assert!(out.ends_with(want), "{out}");
        // No section: the line is as before.
        let out = check("").unwrap();
        assert_eq!(
            out,
            format!(
                "ok: {} (0 peers; no key file yet: the daemon's first start creates {})\n",
                config.display(),
                dir.join("key").display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keygen_writes_once() {
        let dir = temp_dir("keygen");
        let key = dir.join("sub/key");
        let (r, out) = run_capture(&cli_in(&dir, Command::Keygen(Some(key.clone())), false));
        assert_eq!(r, Ok(()));
        assert_eq!(out.trim_end().len(), 44, "{out}");
        assert!(key.exists());
        let (r, _) = run_capture(&cli_in(&dir, Command::Keygen(Some(key.clone())), false));
        let line = r.unwrap_err().line();
        assert!(
            line.starts_with("cloudy: ") && line.contains("already exists"),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A daemon that answers `Busy` to its first `busy` connections, then
    /// its public key to the rest, `total` connections in all.
    fn busy_daemon(path: &Path, busy: usize, total: usize) -> std::thread::JoinHandle<()> {
        use crate::console::proto::{encode_frame, FrameDecoder};
        use std::io::Read;
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            for i in 0..total {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut d = FrameDecoder::new();
                let mut buf = [0u8; 64];
                while d.next_message::<Request>().unwrap().is_none() {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "client closed before its request");
                    d.push(&buf[..n]);
                }
                let r = if i < busy {
                    Response::Busy
                } else {
                    Response::PublicKey([4; 32])
                };
                s.write_all(&encode_frame(&r).unwrap()).unwrap();
            }
        })
    }

    #[test]
    fn busy_daemon_asked_again() {
        let dir = temp_dir("busy-retry");
        let daemon = busy_daemon(&dir.join("s.sock"), 2, 3);
        let cli = cli_in(&dir, Command::Pubkey, false);
        let r = call_daemon(&cli, &Request::PublicKey, &[1, 1, 1]);
        assert_eq!(r, Ok(Response::PublicKey([4; 32])));
        daemon.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn busy_daemon_given_up_on() {
        let dir = temp_dir("busy-give-up");
        let daemon = busy_daemon(&dir.join("s.sock"), 3, 3);
        let cli = cli_in(&dir, Command::Ask(Request::Status), false);
        let r = call_daemon(&cli, &Request::Status, &[1, 2]);
        assert_eq!(
            r,
            Err(
                "the daemon is busy (every console slot taken); gave up after 3 tries in 0.0 s"
                    .into()
            )
        );
        daemon.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // The real schedule: six tries within a few seconds.
        assert_eq!(BUSY_BACKOFF_MS.len() + 1, 6);
        let total: u64 = BUSY_BACKOFF_MS.iter().sum();
        assert!((2000..=4000).contains(&total), "{total}");
    }

    /// `status`, `peers` and the `pubkey` fallback against a real server.
    #[test]
    fn commands_against_a_server() {
        use crate::console::proto::StatusInfo;
        use crate::overlay::OverlayStats;
        let dir = temp_dir("server");
        let mut server = ControlServer::bind(&dir.join("s.sock")).unwrap();
        let status = StatusInfo {
            version: "9.9".into(),
            name: "box-a".into(),
            cloud: "c".into(),
            public_key: [5; 32],
            interface: "cloudy0".into(),
            mode: "tap".into(),
            listen_port: 1,
            uptime_secs: 2,
            peers_configured: 0,
            peers_known: 0,
            peers_up: 0,
            peers_relayed: 0,
            mac_entries: 0,
            stats: OverlayStats::default(),
            device: crate::console::proto::DeviceInfo::default(),
            discovery: None,
            store: None,
        };
        let reply = status.clone();
        let found = vec![crate::console::proto::ServiceInfo {
            instance: "web".into(),
            service_type: "_http._tcp".into(),
            host: "b.c.local".into(),
            address: None,
            port: 80,
            txt: vec![],
            rtt_us: Some(2000),
            hops: 1,
            local: false,
        }];
        let list = found.clone();
        let mut searches = 0;
        let mut handler = move |r: Request| match r {
            Request::Status => Response::Status(reply.clone()),
            Request::Peers => Response::Peers(vec![]),
            Request::PublicKey => Response::PublicKey([5; 32]),
            Request::Publish {
                instance,
                service_type,
                port,
                ..
            } => Response::Ok(format!(
                "published '{instance}' as {service_type} on port {port}"
            )),
            Request::Unpublish { instance } if instance == "web" => Response::Ok("gone".into()),
            Request::Unpublish { .. } => Response::error("no published service named 'x'"),
            // The first search says "warming up", the second answers.
            Request::Search { .. } => {
                searches += 1;
                if searches == 1 {
                    Response::Services {
                        services: vec![],
                        retry_ms: 30,
                    }
                } else {
                    Response::Services {
                        services: list.clone(),
                        retry_ms: 0,
                    }
                }
            }
            Request::Revoke { member } => Response::error(&format!("no member called {member}")),
            Request::Invite { .. } => Response::error("no authority here"),
        };
        let cases = [
            (
                Command::Ask(Request::Status),
                false,
                format::status_text(&status),
            ),
            (
                Command::Ask(Request::Status),
                true,
                format::status_json(&status),
            ),
            (
                Command::Ask(Request::Peers),
                false,
                format::peers_table(&[]),
            ),
            (Command::Ask(Request::Peers), true, "[]\n".to_string()),
            (
                Command::Pubkey,
                false,
                format!("{}\n", crate::keys::encode_public(&[5; 32])),
            ),
            (
                Command::Ask(Request::Publish {
                    instance: "web".into(),
                    service_type: "_http._tcp".into(),
                    port: 80,
                    txt: vec![],
                    host: None,
                }),
                false,
                "published 'web' as _http._tcp on port 80\n".to_string(),
            ),
            (
                Command::Ask(Request::Unpublish {
                    instance: "web".into(),
                }),
                false,
                "gone\n".to_string(),
            ),
            (
                Command::Ask(Request::Search {
                    service_type: None,
                    host: None,
                    all: false,
                }),
                false,
                format::services_table(&found),
            ),
        ];
        for (command, json, want) in cases {
            let cli = cli_in(&dir, command, json);
            let t = std::thread::spawn(move || run_capture(&cli));
            let start = std::time::Instant::now();
            while !t.is_finished() && start.elapsed() < Duration::from_secs(5) {
                server.handle_ready(Instant::ZERO, &mut handler);
                std::thread::sleep(Duration::from_millis(2));
            }
            let (r, out) = t.join().unwrap();
            assert_eq!(r, Ok(()));
            assert_eq!(out, want);
        }
        let cli = cli_in(
            &dir,
            Command::Ask(Request::Unpublish {
                instance: "x".into(),
            }),
            false,
        );
        let t = std::thread::spawn(move || run_capture(&cli));
        let start = std::time::Instant::now();
        while !t.is_finished() && start.elapsed() < Duration::from_secs(5) {
            server.handle_ready(Instant::ZERO, &mut handler);
            std::thread::sleep(Duration::from_millis(2));
        }
        let (r, out) = t.join().unwrap();
        assert_eq!(
            r,
            Err(Failure::Error(
                "the daemon answered: no published service named 'x'".into()
            ))
        );
        assert_eq!(out, "");
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
