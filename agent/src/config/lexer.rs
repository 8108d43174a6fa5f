//! A reader of UCI files with libuci's grammar: text in, sections with
//! their options out, each with the line it came from. It knows nothing of
//! cloudy's options; [`super::uci`] gives them meaning.
//!
//! It follows libuci's `file.c` (openwrt/uci, checked against `uci show`
//! and `uci export` on the files in `tests/fixtures/uci/`) step by step,
//! because libuci's grammar is what its parser does, quirks included:
//!
//! - A statement is a keyword, `config`/`c`, `option`/`o`, `list`/`l` or
//!   `package`/`p` (no other abbreviation, no quotes, no other case), then
//!   words. The keyword ends at a space or tab only.
//! - Words are bare, `'single quoted'` (no escapes) or `"double quoted"`
//!   (a backslash takes the next character literally, so `\n` is `n`);
//!   pieces run together (`'it'\''s'` is `it's`). A bare backslash also
//!   takes the next character. A quoted string may span lines.
//! - A backslash at the end of a line (outside single quotes) joins the
//!   next line to the word, without the newline; if that line starts with
//!   a blank, the word ends there.
//! - `#` outside quotes ends the line, even inside a bare word (`ab#c` is
//!   `ab`) or right after a closing quote.
//! - `;` ends a statement and another may follow on the line. libuci cuts
//!   the line at a `;` that ends an unquoted word (`option a x;option b y`
//!   keeps `a` and silently drops the rest): that is refused here, as is a
//!   NUL byte, rather than read differently from `uci`.
//! - `config TYPE [NAME]`: TYPE is printable ASCII without blanks; NAME,
//!   option names and list names are `[A-Za-z0-9_]+`; `package NAME` is
//!   `[A-Za-z0-9_-]+` and is otherwise ignored (as `uci` does when it loads
//!   one file). An empty NAME makes an anonymous section.
//! - A named section given again with the same type is the same section
//!   (its options merge, at its first place); with another type it is an
//!   error. Anonymous sections are always new.
//! - `option N V` replaces N's value (a list becomes a single value) and
//!   keeps N's place; an empty V does nothing. `list N V` appends V (also
//!   empty) to the list N, turning a single value into the list's first
//!   item. A statement with a word too many, or without a required one,
//!   is an error.
//!
//! Invariants: nothing panics on input; memory is bounded by the input
//! (at most `limits::MAX_CONFIG_BYTES`, refused above) and by
//! [`MAX_SECTIONS`] / [`MAX_OPTIONS`]; [`emit`] writes libuci's canonical
//! form (`uci export`), which reads back into the same [`Document`] apart
//! from line numbers.

use std::fmt;

use crate::limits;

/// Sections in one file: a cloudy config has at most one agent, 64 peers
/// and 32 services, so this only bounds the work on a hostile file.
pub const MAX_SECTIONS: usize = 1024;
/// Different options in one section (cloudy's have at most a dozen).
pub const MAX_OPTIONS: usize = 256;
/// Characters of a word quoted back in an error message.
const MAX_SHOWN_CHARS: usize = 64;

/// A whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// In file order (a merged section stays at its first place).
    pub sections: Vec<Section>,
}

/// A document without its line numbers: `(type, name, [(option, is_list,
/// [values])])` of each section, to compare two readings of one file.
pub type Shape = Vec<(String, Option<String>, Vec<(String, bool, Vec<String>)>)>;

impl Document {
    /// What the document holds, without where (see [`Shape`]).
    pub fn shape(&self) -> Shape {
        self.sections
            .iter()
            .map(|s| {
                let options = s
                    .options
                    .iter()
                    .map(|o| {
                        let values = o.values.iter().map(|v| v.text.clone()).collect();
                        (o.name.clone(), o.is_list, values)
                    })
                    .collect();
                (s.ty.clone(), s.name.clone(), options)
            })
            .collect()
    }
}

/// One section (`config TYPE ['NAME']`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub ty: String,
    /// `None` for an anonymous section (`uci show` calls it `@TYPE[N]`).
    pub name: Option<String>,
    /// Line of its first `config` statement.
    pub line: usize,
    /// In the order they first appeared.
    pub options: Vec<UciOption>,
}

/// One option of a section: a single value or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciOption {
    pub name: String,
    /// A list (`list` statements) rather than one value (`option`).
    pub is_list: bool,
    /// One value for an option, one or more for a list.
    pub values: Vec<Value>,
    /// Line of the first statement that named it.
    pub line: usize,
}

/// A value with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    /// The line where the value starts.
    pub line: usize,
    /// Given by a `list` statement (else `option`).
    pub from_list: bool,
}

impl Section {
    /// The option called `name`, if the section has it.
    pub fn option(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// A statement's keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    Config,
    Option,
    List,
    Package,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Config => "config",
            Keyword::Option => "option",
            Keyword::List => "list",
            Keyword::Package => "package",
        }
    }

    /// The statement's form, for "expected" messages.
    fn form(self) -> &'static str {
        match self {
            Keyword::Config => "config: expected a section type (config TYPE ['NAME'])",
            Keyword::Option => "option: expected a name and a value (option NAME 'VALUE')",
            Keyword::List => "list: expected a name and a value (list NAME 'VALUE')",
            Keyword::Package => "package: expected a name (package NAME)",
        }
    }

    /// libuci's spellings: the whole word or its first letter.
    fn from_word(w: &[u8]) -> Option<Keyword> {
        match w {
            b"c" | b"config" => Some(Keyword::Config),
            b"o" | b"option" => Some(Keyword::Option),
            b"l" | b"list" => Some(Keyword::List),
            b"p" | b"package" => Some(Keyword::Package),
            _ => None,
        }
    }
}

/// What came before a word too many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    PackageName,
    SectionType,
    SectionName,
    /// The value of `option NAME` / `list NAME`.
    Value(Keyword, String),
}

/// Why a file is not UCI, as libuci would also say (apart from the two
/// refusals of the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Larger than `limits::MAX_CONFIG_BYTES`.
    TooLarge,
    NulByte,
    /// Not a keyword (libuci: "invalid command").
    UnknownStatement(String),
    /// A keyword without its required words (libuci: "insufficient
    /// arguments", "config without name").
    Missing(Keyword),
    /// A word too many (libuci: "too many arguments").
    Extra {
        after: After,
        word: String,
    },
    InvalidOptionName(String),
    InvalidSectionName {
        ty: String,
        name: String,
    },
    InvalidSectionType(String),
    InvalidPackageName(String),
    /// `option`/`list` before any `config` (libuci: "option/list command
    /// found before the first section"); the name when it could be read.
    OutsideSection(Keyword, Option<String>),
    /// libuci: "EOF with unterminated '"; the line is the opening quote's.
    Unterminated(char),
    /// libuci: "section of different type overwrites prior section with
    /// same name".
    Retyped {
        name: String,
        ty: String,
        first_ty: String,
        first_line: usize,
    },
    /// A `;` right after an unquoted word, where libuci drops the rest of
    /// the line.
    SemicolonCutsLine(String),
    TooManySections,
    TooManyOptions,
}

/// An error and its line (1-based; 0 for the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub kind: ErrorKind,
}

/// A word quoted back in a message: cut, control characters escaped.
pub fn show(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::TooLarge => write!(
                f,
                "file is larger than {} bytes (limits::MAX_CONFIG_BYTES)",
                limits::MAX_CONFIG_BYTES
            ),
            ErrorKind::NulByte => f.write_str("NUL byte in the file"),
            ErrorKind::UnknownStatement(w) => {
                let trimmed = w.trim_end_matches(is_space_char);
                let keyword = Keyword::from_word(trimmed.as_bytes());
                if let Some(k) = keyword.filter(|_| trimmed.len() < w.len()) {
                    // `option` alone on its line: libuci reads the newline
                    // as part of the keyword.
                    return f.write_str(k.form());
                }
                write!(
                    f,
                    "unknown statement {} (expected config, option or list",
                    show(w)
                )?;
                let bare = w.trim_matches(|c| c == '\'' || c == '"');
                let glued = ["config", "option", "list", "package"]
                    .into_iter()
                    .find(|k| w.len() > k.len() && w.starts_with(k));
                if bare != w && Keyword::from_word(bare.as_bytes()).is_some() {
                    f.write_str("; keywords are not quoted")?;
                } else if let Some(k) = glued {
                    write!(f, "; put a space after {k}")?;
                } else if w.len() > 1 && Keyword::from_word(&w.as_bytes()[..1]).is_some() {
                    f.write_str("; only c, o, l and p abbreviate them")?;
                }
                f.write_str(")")
            }
            ErrorKind::Missing(k) => f.write_str(k.form()),
            ErrorKind::Extra { after, word } => {
                let after = match after {
                    After::PackageName => "package name".to_string(),
                    After::SectionType => "section type".to_string(),
                    After::SectionName => "section name".to_string(),
                    After::Value(k, name) => format!("value of {} {name}", k.as_str()),
                };
                write!(
                    f,
                    "unexpected {} after the {after} (quote values that contain spaces)",
                    show(word)
                )
            }
            ErrorKind::InvalidOptionName(n) => write!(
                f,
                "invalid option name {} (letters, digits and '_' only)",
                show(n)
            ),
            ErrorKind::InvalidSectionName { ty, name } => write!(
                f,
                "config {ty}: invalid section name {} (letters, digits and '_' only)",
                show(name)
            ),
            ErrorKind::InvalidSectionType(t) => write!(
                f,
                "config: invalid section type {} (printable ASCII without spaces)",
                show(t)
            ),
            ErrorKind::InvalidPackageName(n) => write!(
                f,
                "package: invalid name {} (letters, digits, '_' and '-' only)",
                show(n)
            ),
            ErrorKind::OutsideSection(k, name) => {
                write!(f, "{}", k.as_str())?;
                if let Some(n) = name {
                    write!(f, " {n}")?;
                }
                f.write_str(" outside a section (expected config TYPE first)")
            }
            ErrorKind::Unterminated(q) => write!(
                f,
                "unterminated {q} quote: the value runs from here to the end of the file"
            ),
            ErrorKind::Retyped {
                name,
                ty,
                first_ty,
                first_line,
            } => write!(
                f,
                "config {ty} {}: that name is a config {first_ty} section (line {first_line}); \
                 a repeated section name must keep its type",
                show(name)
            ),
            ErrorKind::SemicolonCutsLine(rest) => write!(
                f,
                "';' right after an unquoted word: uci ignores the rest of the line ({}); \
                 put a space before ';' or quote the word",
                show(rest.trim())
            ),
            ErrorKind::TooManySections => write!(f, "too many sections: at most {MAX_SECTIONS}"),
            ErrorKind::TooManyOptions => {
                write!(f, "too many options in one section: at most {MAX_OPTIONS}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for Error {}

/// Read a whole file.
pub fn parse(text: &str) -> Result<Document, Error> {
    if text.len() > limits::MAX_CONFIG_BYTES {
        return Err(Error {
            line: 0,
            kind: ErrorKind::TooLarge,
        });
    }
    if let Some(at) = text.bytes().position(|b| b == 0) {
        let line = 1 + text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        return Err(Error {
            line,
            kind: ErrorKind::NulByte,
        });
    }
    let mut r = Reader {
        input: text.as_bytes(),
        next: 0,
        lines: 0,
        buf: Vec::new(),
        filled: 0,
        pos: 0,
        starts: Vec::new(),
        doc: Document::default(),
        current: None,
        last_type: String::new(),
    };
    loop {
        r.pos = 0;
        r.getln(0);
        if r.buf.is_empty() {
            return Ok(r.doc);
        }
        r.parse_line()?;
    }
}

/// libuci's canonical form, as `uci export` prints it: a `package` line,
/// then each section after a blank line, tab-indented options, every
/// value single-quoted (`'` as `'\''`).
pub fn emit(doc: &Document, package: &str) -> String {
    let mut out = format!("package {package}\n");
    for s in &doc.sections {
        out.push_str("\nconfig ");
        if s.ty.bytes().any(|b| b"'\"\\#;".contains(&b)) {
            push_quoted(&mut out, &s.ty);
        } else {
            out.push_str(&s.ty);
        }
        if let Some(name) = &s.name {
            out.push(' ');
            push_quoted(&mut out, name);
        }
        out.push('\n');
        for o in &s.options {
            let keyword = if o.is_list { "\tlist " } else { "\toption " };
            for v in &o.values {
                out.push_str(keyword);
                out.push_str(&o.name);
                out.push(' ');
                push_quoted(&mut out, &v.text);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// C's `isspace`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_space_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_space)
}

/// libuci's `uci_validate_str`: names are `[A-Za-z0-9_]` (and `-` for a
/// package); a type is any printable ASCII but space.
fn valid_word(s: &[u8], name: bool, package: bool) -> bool {
    !s.is_empty()
        && s.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || c == b'_'
                || (c == b'-' && package)
                || (!name && (33..=126).contains(&c))
        })
}

fn text(bytes: &[u8]) -> String {
    // Only ASCII bytes are ever removed from valid UTF-8, so this is
    // always valid; lossy rather than a panic all the same.
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `next_arg` reads, for its error.
#[derive(Clone, Copy)]
enum Arg {
    PackageName,
    SectionType,
    SectionName,
    OptionName(Keyword),
    Value,
}

/// libuci's parse context: the logical line being read in `buf` (later
/// lines appended by continuations and multi-line quotes), read position
/// `pos`, NUL bytes written into `buf` where libuci writes them.
struct Reader<'a> {
    input: &'a [u8],
    /// Next unread byte of `input`.
    next: usize,
    /// Physical lines read so far.
    lines: usize,
    buf: Vec<u8>,
    /// libuci's `buf_filled`: bytes in `buf` after the last successful read.
    filled: usize,
    pos: usize,
    /// Where each physical line starts in `buf`, with its number.
    starts: Vec<(usize, usize)>,
    doc: Document,
    /// Index of the section that options go to.
    current: Option<usize>,
    /// The type of the `config` statement being read, for its errors.
    last_type: String,
}

impl Reader<'_> {
    /// `buf[i]`, 0 past the end (C's terminator).
    fn c(&self, i: usize) -> u8 {
        self.buf.get(i).copied().unwrap_or(0)
    }

    fn set0(&mut self, i: usize) {
        if let Some(b) = self.buf.get_mut(i) {
            *b = 0;
        }
    }

    /// The C string at `i`: up to the first NUL.
    fn cstr(&self, i: usize) -> &[u8] {
        let tail = self.buf.get(i..).unwrap_or_default();
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    fn line_of(&self, i: usize) -> usize {
        self.starts
            .iter()
            .rev()
            .find(|(o, _)| *o <= i)
            .map_or(self.lines, |&(_, l)| l)
    }

    fn err<T>(&self, at: usize, kind: ErrorKind) -> Result<T, Error> {
        Err(Error {
            line: self.line_of(at),
            kind,
        })
    }

    /// `uci_getln`: read the next physical line into `buf` at `offset`.
    fn getln(&mut self, offset: usize) {
        self.buf.truncate(offset);
        self.starts.retain(|&(o, _)| o < offset);
        let rest = self.input.get(self.next..).unwrap_or_default();
        if rest.is_empty() {
            return;
        }
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        self.lines += 1;
        self.starts.push((self.buf.len(), self.lines));
        self.buf.extend_from_slice(&rest[..len]);
        self.next += len;
        self.filled = self.buf.len();
    }

    fn skip_whitespace(&mut self) {
        while self.c(self.pos) != 0 && is_space(self.c(self.pos)) {
            self.pos += 1;
        }
    }

    fn addc(&mut self, target: &mut usize) {
        let c = self.c(self.pos);
        if let Some(b) = self.buf.get_mut(*target) {
            *b = c;
        }
        *target += 1;
        self.pos += 1;
    }

    /// `parse_backslash`: false when it joined the next line instead.
    fn backslash(&mut self) -> bool {
        self.pos += 1;
        let c = self.c(self.pos);
        let crlf_end = c == b'\r' && self.c(self.pos + 1) == b'\n' && self.c(self.pos + 2) == 0;
        if c == 0 || c == b'\n' || crlf_end {
            self.getln(self.pos);
            return false;
        }
        true
    }

    fn quoted(&mut self, target: &mut usize, quote: u8) -> Result<(), Error> {
        let open = self.pos;
        self.pos += 1;
        loop {
            match self.c(self.pos) {
                c if c == quote => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    // A quoted value goes on with the next line.
                    self.getln(self.pos);
                    if self.c(self.pos) == 0 {
                        return self.err(open, ErrorKind::Unterminated(char::from(quote)));
                    }
                }
                b'\\' if quote == b'"' => {
                    if self.backslash() {
                        self.addc(target);
                    }
                }
                _ => self.addc(target),
            }
        }
    }

    /// `parse_str`: one word, written at `target` (behind `pos`).
    fn parse_str(&mut self, target: &mut usize) -> Result<(), Error> {
        let mut next = true;
        loop {
            match self.c(self.pos) {
                b'\'' => self.quoted(target, b'\'')?,
                b'"' => self.quoted(target, b'"')?,
                b'#' => {
                    self.set0(self.pos);
                    break;
                }
                0 => break,
                b';' => {
                    next = false;
                    if *target == self.pos {
                        // libuci's terminator overwrites this ';' and, with
                        // it, the rest of the line.
                        let rest = self.cstr(self.pos + 1);
                        let start = rest.iter().position(|&b| !is_space(b) && b != b';');
                        if let Some(i) = start.filter(|&i| rest[i] != b'#') {
                            let rest = text(&rest[i..]);
                            return self.err(self.pos, ErrorKind::SemicolonCutsLine(rest));
                        }
                    }
                    break;
                }
                b'\\' => {
                    if self.backslash() {
                        self.addc(target);
                    }
                }
                _ => self.addc(target),
            }
            let c = self.c(self.pos);
            if c == 0 || is_space(c) {
                break;
            }
        }
        if self.c(self.pos) != 0 && next {
            self.pos += 1;
        }
        self.set0(*target);
        Ok(())
    }

    /// `next_arg`: the next word (empty when there is none), checked.
    fn next_arg(&mut self, required: bool, arg: Arg) -> Result<(String, usize), Error> {
        self.skip_whitespace();
        let start = self.pos;
        let mut target = self.pos;
        if self.c(self.pos) == b';' {
            self.set0(self.pos);
            self.pos += 1;
        } else {
            self.parse_str(&mut target)?;
        }
        let word = self.cstr(start);
        let line = self.line_of(start);
        if word.is_empty() {
            return match arg {
                Arg::PackageName if required => {
                    self.err(start, ErrorKind::Missing(Keyword::Package))
                }
                Arg::SectionType if required => {
                    self.err(start, ErrorKind::Missing(Keyword::Config))
                }
                Arg::OptionName(k) if required => self.err(start, ErrorKind::Missing(k)),
                _ => Ok((String::new(), line)),
            };
        }
        let ok = match arg {
            Arg::PackageName => valid_word(word, true, true),
            Arg::SectionName | Arg::OptionName(_) => valid_word(word, true, false),
            Arg::SectionType | Arg::Value => true,
        };
        let word = text(word);
        if !ok {
            let kind = match arg {
                Arg::PackageName => ErrorKind::InvalidPackageName(word),
                Arg::OptionName(_) => ErrorKind::InvalidOptionName(word),
                // The type was read just before.
                _ => ErrorKind::InvalidSectionName {
                    ty: self.last_type.clone(),
                    name: word,
                },
            };
            return self.err(start, kind);
        }
        Ok((word, line))
    }

    /// `assert_eol`: nothing but a comment or `;` may follow.
    fn assert_eol(&mut self, after: After) -> Result<(), Error> {
        self.skip_whitespace();
        let start = self.pos;
        let (word, _) = self.next_arg(false, Arg::Value)?;
        if word.is_empty() {
            return Ok(());
        }
        self.err(start, ErrorKind::Extra { after, word })
    }

    /// `uci_increase_pos` past the keyword, which `strtok` ended with a NUL.
    fn skip_keyword(&mut self, k: Keyword) -> Result<(), Error> {
        let add = self.cstr(self.pos).len() + 1;
        if self.pos + add > self.filled {
            return self.err(self.pos, ErrorKind::Missing(k));
        }
        self.pos += add;
        Ok(())
    }

    /// C's `strtok(buf + pos, " \t")`: the keyword's offset.
    fn strtok(&mut self) -> Option<usize> {
        let mut i = self.pos;
        while matches!(self.c(i), b' ' | b'\t') {
            i += 1;
        }
        if self.c(i) == 0 {
            return None;
        }
        let start = i;
        while !matches!(self.c(i), 0 | b' ' | b'\t') {
            i += 1;
        }
        self.set0(i);
        Some(start)
    }

    /// `uci_parse_line`: the statements of one logical line.
    fn parse_line(&mut self) -> Result<(), Error> {
        self.skip_whitespace();
        loop {
            let Some(at) = self.strtok() else {
                return Ok(());
            };
            let word = self.cstr(at);
            if word.first() == Some(&b'#') {
                return Ok(());
            }
            let line = self.line_of(at);
            match Keyword::from_word(word) {
                Some(Keyword::Package) => self.package()?,
                Some(Keyword::Config) => self.config(line)?,
                Some(k @ (Keyword::Option | Keyword::List)) => self.option(k, line)?,
                None => {
                    let w = text(word);
                    return self.err(at, ErrorKind::UnknownStatement(w));
                }
            }
        }
    }

    fn package(&mut self) -> Result<(), Error> {
        self.skip_keyword(Keyword::Package)?;
        self.next_arg(true, Arg::PackageName)?;
        self.assert_eol(After::PackageName)
    }

    fn config(&mut self, line: usize) -> Result<(), Error> {
        self.skip_keyword(Keyword::Config)?;
        let type_at = {
            self.skip_whitespace();
            self.pos
        };
        let (ty, _) = self.next_arg(true, Arg::SectionType)?;
        if !valid_word(ty.as_bytes(), false, false) {
            return self.err(type_at, ErrorKind::InvalidSectionType(ty));
        }
        self.last_type = ty.clone();
        let (name, _) = self.next_arg(false, Arg::SectionName)?;
        let after = if name.is_empty() {
            After::SectionType
        } else {
            After::SectionName
        };
        self.assert_eol(after)?;
        if !name.is_empty() {
            let found = self
                .doc
                .sections
                .iter()
                .position(|s| s.name.as_deref() == Some(name.as_str()));
            if let Some(i) = found {
                let first = &self.doc.sections[i];
                if first.ty != ty {
                    let kind = ErrorKind::Retyped {
                        name,
                        ty,
                        first_ty: first.ty.clone(),
                        first_line: first.line,
                    };
                    return Err(Error { line, kind });
                }
                self.current = Some(i);
                return Ok(());
            }
        }
        if self.doc.sections.len() >= MAX_SECTIONS {
            return Err(Error {
                line,
                kind: ErrorKind::TooManySections,
            });
        }
        self.doc.sections.push(Section {
            ty,
            name: (!name.is_empty()).then_some(name),
            line,
            options: Vec::new(),
        });
        self.current = Some(self.doc.sections.len() - 1);
        Ok(())
    }

    fn option(&mut self, k: Keyword, line: usize) -> Result<(), Error> {
        let Some(current) = self.current else {
            // libuci stops here; read on only to name the option.
            let name = self
                .skip_keyword(k)
                .and_then(|()| self.next_arg(false, Arg::OptionName(k)))
                .ok()
                .map(|(n, _)| n)
                .filter(|n| !n.is_empty());
            return Err(Error {
                line,
                kind: ErrorKind::OutsideSection(k, name),
            });
        };
        self.skip_keyword(k)?;
        let (name, _) = self.next_arg(true, Arg::OptionName(k))?;
        let (value, value_line) = self.next_arg(false, Arg::Value)?;
        self.assert_eol(After::Value(k, name.clone()))?;
        let is_list = k == Keyword::List;
        let Some(section) = self.doc.sections.get_mut(current) else {
            return Ok(());
        };
        let value = Value {
            text: value,
            line: value_line,
            from_list: is_list,
        };
        let full = section.options.len() >= MAX_OPTIONS;
        match section.options.iter_mut().find(|o| o.name == name) {
            // `option x ''` changes nothing (libuci's uci_set).
            _ if !is_list && value.text.is_empty() => {}
            Some(o) if is_list => {
                o.is_list = true;
                o.values.push(value);
            }
            Some(o) => {
                o.is_list = false;
                o.values = vec![value];
            }
            None if full => {
                return Err(Error {
                    line,
                    kind: ErrorKind::TooManyOptions,
                })
            }
            None => section.options.push(UciOption {
                name,
                is_list,
                values: vec![value],
                line,
            }),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written with the real libuci's `uci show` / `uci export`
    /// output (or its error) next to them; see their README.
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/uci");

    /// Files libuci reads by dropping the rest of a line after `x;`: we
    /// refuse them (ErrorKind::SemicolonCutsLine) instead.
    const REFUSED: &[&str] = &[
        "semicolon",
        "semicolon_after_type",
        "semicolon_bare_then",
        "semicolon_double",
        "semicolon_no_value",
    ];

    fn doc(text: &str) -> Document {
        match parse(text) {
            Ok(d) => d,
            Err(e) => panic!("{}: {e}\n--- text:\n{text}", e.line),
        }
    }

    fn fails(text: &str) -> Error {
        match parse(text) {
            Ok(d) => panic!("accepted: {d:?}\n--- text:\n{text}"),
            Err(e) => e,
        }
    }

    fn shape(d: &Document) -> Shape {
        d.shape()
    }

    /// One `'...'` value of `uci show` (`'\''` inside), and what follows.
    fn show_value(s: &str) -> (String, &str) {
        let mut rest = s.strip_prefix('\'').expect("a quoted value");
        let mut value = String::new();
        loop {
            let end = rest.find('\'').expect("closing quote");
            value.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            match rest.strip_prefix("\\''") {
                Some(r) => {
                    value.push('\'');
                    rest = r;
                }
                None => return (value, rest),
            }
        }
    }

    /// `uci show cloudy`: `(key, type, [(option, [values])])` per section;
    /// a key is the section's name or `@TYPE[N]`.
    type Shown = Vec<(String, String, Vec<(String, Vec<String>)>)>;

    fn parse_show(mut rest: &str) -> Shown {
        let mut out: Shown = Vec::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').expect("KEY=");
            let key = key.strip_prefix("cloudy.").expect("cloudy.");
            match key.split_once('.') {
                None => {
                    let (ty, r) = after.split_once('\n').expect("a type line");
                    out.push((key.to_string(), ty.to_string(), Vec::new()));
                    rest = r;
                }
                Some((section, option)) => {
                    let mut values = Vec::new();
                    let mut r = after;
                    loop {
                        let (v, r2) = show_value(r);
                        values.push(v);
                        if let Some(r3) = r2.strip_prefix(' ') {
                            r = r3;
                            continue;
                        }
                        r = r2.strip_prefix('\n').expect("end of the option line");
                        break;
                    }
                    let last = out.last_mut().expect("an option after its section");
                    assert_eq!(last.0, section);
                    last.2.push((option.to_string(), values));
                    rest = r;
                }
            }
        }
        out
    }

    /// What `uci show` would print of our document.
    fn as_shown(d: &Document) -> Shown {
        d.sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let key = s.name.clone().unwrap_or_else(|| {
                    let n = d.sections[..i].iter().filter(|x| x.ty == s.ty).count();
                    format!("@{}[{n}]", s.ty)
                });
                let opts = s
                    .options
                    .iter()
                    .map(|o| {
                        (
                            o.name.clone(),
                            o.values.iter().map(|v| v.text.clone()).collect(),
                        )
                    })
                    .collect();
                (key, s.ty.clone(), opts)
            })
            .collect()
    }

    #[test]
    fn fixtures_match_libuci() {
        let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
            .expect("tests/fixtures/uci")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".uci").map(str::to_string)
            })
            .collect();
        names.sort();
        let read = |name: &str, ext: &str| {
            std::fs::read_to_string(format!("{FIXTURES}/{name}.{ext}")).ok()
        };
        let (mut same, mut errors, mut refused) = (0, 0, 0);
        for name in &names {
            let text = read(name, "uci").expect("UTF-8 fixture");
            let ours = parse(&text);
            if let Some(theirs) = read(name, "error") {
                // libuci refuses it: so do we.
                assert!(
                    ours.is_err(),
                    "{name}: libuci said {theirs}, we read {ours:?}"
                );
                errors += 1;
                continue;
            }
            if REFUSED.contains(&name.as_str()) {
                let e = ours.expect_err(name);
                assert!(
                    matches!(e.kind, ErrorKind::SemicolonCutsLine(_)),
                    "{name}: {e}"
                );
                refused += 1;
                continue;
            }
            let d = match ours {
                Ok(d) => d,
                Err(e) => panic!("{name}:{}: {e}", e.line),
            };
            let show = read(name, "show").expect("a .show next to an accepted .uci");
            assert_eq!(
                as_shown(&d),
                parse_show(&show),
                "{name}: values differ from uci show"
            );
            // Our canonical form is libuci's, byte for byte...
            let export = read(name, "export").expect("a .export next to a .show");
            assert_eq!(emit(&d, "cloudy"), export, "{name}: not uci export's form");
            // ...and reads back the same (lists and single values included).
            assert_eq!(
                shape(&doc(&export)),
                shape(&d),
                "{name}: export reads back differently"
            );
            same += 1;
        }
        assert!(REFUSED.len() == refused, "a REFUSED fixture is missing");
        assert!(
            same >= 80 && errors >= 40,
            "{same} read alike, {errors} errors"
        );
    }

    #[test]
    fn anonymous_and_merged_sections() {
        let d = doc(
            "config agent\nconfig peer 'a'\n\toption x 1\nconfig peer\nconfig peer 'a'\n\
                     \tlist y 2\nconfig peer ''\n",
        );
        let names: Vec<_> = d.sections.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [None, Some("a"), None, None]);
        assert_eq!(d.sections[1].line, 2);
        let a = &d.sections[1];
        assert_eq!(a.options.len(), 2);
        assert_eq!(a.option("y").map(|o| o.values[0].line), Some(6));
        let e = fails("config peer 'a'\n\nconfig agent 'a'\n");
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "config agent 'a': that name is a config peer section (line 1); a repeated \
             section name must keep its type"
        );
    }

    #[test]
    fn options_and_lists() {
        let d = doc(
            "config a\n\toption x 1\n\toption x 2\n\tlist l A\n\toption l B\n\
                     \toption m C\n\tlist m D\n\toption e ''\n\toption m2\n\tlist n\n",
        );
        let s = &d.sections[0];
        let get = |n: &str| {
            let o = s.option(n).unwrap_or_else(|| panic!("no {n}"));
            let values: Vec<_> = o.values.iter().map(|v| v.text.as_str()).collect();
            (o.is_list, values)
        };
        assert_eq!(get("x"), (false, vec!["2"]));
        assert_eq!(get("l"), (false, vec!["B"]));
        assert_eq!(get("m"), (true, vec!["C", "D"]));
        assert_eq!(get("n"), (true, vec![""]));
        assert!(s.option("e").is_none() && s.option("m2").is_none());
        // Places: first appearance; lines: each value's own.
        let order: Vec<_> = s.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(order, ["x", "l", "m", "n"]);
        let m = s.option("m").unwrap();
        assert_eq!(
            (m.line, m.values[1].line, m.values[1].from_list),
            (6, 7, true)
        );
        assert_eq!(
            s.option("x").map(|o| (o.line, o.values[0].line)),
            Some((2, 3))
        );
    }

    #[test]
    fn words_and_lines() {
        let d = doc(
            "c t\n\to a 'x\ny'\n\to b \"p\\\nq\"\n\to c r\\\ns\n\to d 'it'\\''s'#c\n\
                     \to e f#g\n\to g \"\\n\\\\\" ; o h i\n\to j k\\ l\n",
        );
        let s = &d.sections[0];
        let v = |n: &str| {
            s.option(n)
                .map(|o| (o.values[0].text.clone(), o.values[0].line))
        };
        assert_eq!(v("a"), Some(("x\ny".into(), 2)));
        assert_eq!(v("b"), Some(("pq".into(), 4)));
        assert_eq!(v("c"), Some(("rs".into(), 6)));
        assert_eq!(v("d"), Some(("it's".into(), 8)));
        assert_eq!(v("e"), Some(("f".into(), 9)));
        assert_eq!(v("g"), Some(("n\\".into(), 10)));
        assert_eq!(v("h"), Some(("i".into(), 10)));
        assert_eq!(v("j"), Some(("k l".into(), 11)));
    }

    #[test]
    fn errors_name_the_line_and_the_form() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "config agent\n option name 'abc\n\n",
                2,
                "unterminated ' quote",
            ),
            (
                "config agent\n option name \"abc",
                2,
                "unterminated \" quote",
            ),
            (
                "config agent\n option name my box\n",
                2,
                "unexpected 'box' after the value of option name",
            ),
            (
                "config agent x y\n",
                1,
                "unexpected 'y' after the section name",
            ),
            (
                "config agent ; o a b\n",
                1,
                "unexpected 'o' after the section type",
            ),
            (
                "config\n",
                1,
                "config: expected a section type (config TYPE ['NAME'])",
            ),
            ("config", 1, "config: expected a section type"),
            ("config ''\n", 1, "config: expected a section type"),
            (
                "config agent\n option\n",
                2,
                "option: expected a name and a value (option NAME 'VALUE')",
            ),
            (
                "config agent\n option \n",
                2,
                "option: expected a name and a value",
            ),
            (
                "config agent\n list",
                2,
                "list: expected a name and a value",
            ),
            ("package\n", 1, "package: expected a name"),
            (
                "\n\nfoo bar\n",
                3,
                "unknown statement 'foo' (expected config, option or list)",
            ),
            ("config a\n'option' x y\n", 2, "keywords are not quoted"),
            (
                "config a\nopt x y\n",
                2,
                "only c, o, l and p abbreviate them",
            ),
            ("config#x\n", 1, "put a space after config"),
            (
                "config agent\n option 'na-me' x\n",
                2,
                "invalid option name 'na-me' (letters, digits and '_' only)",
            ),
            (
                "config agent 'a-b'\n",
                1,
                "config agent: invalid section name 'a-b' (letters, digits and '_' only)",
            ),
            ("config 'a b'\n", 1, "config: invalid section type 'a b'"),
            ("package 'a.b'\n", 1, "package: invalid name 'a.b'"),
            (
                "\noption name x\n",
                2,
                "option name outside a section (expected config TYPE first)",
            ),
            ("list x y\n", 1, "list x outside a section"),
            (
                "config a\n\toption b c;option d e\n",
                2,
                "';' right after an unquoted word: uci ignores the rest of the line ('option d e')",
            ),
            ("config a\n\toption b 'x\n\ny' z\n", 4, "unexpected 'z'"),
            ("config a\n\x00", 2, "NUL byte in the file"),
        ];
        for (text, line, needle) in cases {
            let e = fails(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
        let e = fails(&"#".repeat(limits::MAX_CONFIG_BYTES + 1));
        assert_eq!((e.line, e.kind), (0, ErrorKind::TooLarge));
        assert!(parse(&"#".repeat(limits::MAX_CONFIG_BYTES)).is_ok());
    }

    #[test]
    fn caps() {
        let mut text = String::new();
        for i in 0..MAX_SECTIONS {
            text.push_str(&format!("c t s{i}\n"));
        }
        assert_eq!(doc(&text).sections.len(), MAX_SECTIONS);
        // A merged section is no new one.
        assert_eq!(doc(&format!("{text}c t s0\n")).sections.len(), MAX_SECTIONS);
        let e = fails(&format!("{text}c t\n"));
        assert_eq!(
            (e.line, e.kind),
            (MAX_SECTIONS + 1, ErrorKind::TooManySections)
        );
        let mut text = String::from("c t\n");
        for i in 0..MAX_OPTIONS {
            text.push_str(&format!("o o{i} v\n"));
        }
        assert_eq!(doc(&text).sections[0].options.len(), MAX_OPTIONS);
        let e = fails(&format!("{text}o o0 w\nl x y\n"));
        assert_eq!(
            (e.line, e.kind),
            (MAX_OPTIONS + 3, ErrorKind::TooManyOptions)
        );
    }

    #[test]
    fn emit_reads_back() {
        let d = doc(
            "package cloudy\nc \"a'b\" n\n\to x \"q'uote\\\"\"\n\tl y ''\n\tl y 'multi\nline'\n\
                     c peer\n\to k v\n",
        );
        let text = emit(&d, "cloudy");
        assert_eq!(
            text,
            "package cloudy\n\nconfig 'a'\\''b' 'n'\n\toption x 'q'\\''uote\"'\n\tlist y ''\n\
             \tlist y 'multi\nline'\n\nconfig peer\n\toption k 'v'\n\n"
        );
        assert_eq!(shape(&doc(&text)), shape(&d));
        assert_eq!(emit(&Document::default(), "cloudy"), "package cloudy\n\n");
    }

    #[test]
    fn no_panic_on_noise() {
        // A cheap deterministic smoke test; the fuzz target does the real work.
        let alphabet: Vec<char> =
            "config option list package c o l p agent x '\"\\#;\n\r\t \u{b} é_-"
                .chars()
                .collect();
        let mut state: u32 = 0x9e37_79b9;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(state % 120) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                s.push(alphabet[state as usize % alphabet.len()]);
            }
            if let Ok(d) = parse(&s) {
                let again = parse(&emit(&d, "cloudy"));
                assert_eq!(again.as_ref().map(shape), Ok(shape(&d)), "{s:?}");
            }
        }
    }
}
