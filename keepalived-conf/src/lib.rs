//! A reader for keepalived's configuration language (`keepalived.conf`).
//!
//! Three layers:
//!
//! * the generic layer ([`parse_tree`], [`parse_tree_str`]) turns text into a tree of
//!   [`Node`]s: a keyword, its arguments and an optional `{ ... }` block, each with the
//!   [`Pos`] (file, line, column) it was read at. It handles comments, quoted strings and
//!   `include` directives;
//! * the VRRP layer ([`parse_vrrp`], [`parse_vrrp_str`]) reads `global_defs`, `vrrp_script`,
//!   `vrrp_track_process`, `vrrp_instance` and `vrrp_sync_group` into a [`VrrpConf`];
//! * the LVS layer ([`lvs::parse_lvs`], [`lvs::parse_lvs_str`]) reads `virtual_server` into an
//!   [`lvs::LvsConf`].
//!
//! A file may hold both VRRP and LVS blocks: each typed layer silently skips the top-level
//! blocks of the other.
//!
//! The typed layers read a file as keepalived 2.2.7 does (tested by running keepalived on the
//! same files): what keepalived reports and ignores — an unknown keyword, a bad number or
//! address, a value out of range, a reference to nothing, a port DR cannot use — is a
//! [`Warning`] naming file, line and column, and the setting keeps the value keepalived gives
//! it. A [`ConfError`], also with its position, is kept for what keepalived would run as
//! something other than what is written: unbalanced braces, include loops, an instance without
//! `interface` or `virtual_router_id`, duplicate instance names or VRIDs, two
//! `vrrp_track_process` blocks of one name, a process delay keepalived would wrap, AH
//! authentication, VRRPv2 over IPv6.
//!
//! # Syntax accepted
//!
//! * Words are separated by white space. `{`, `}` and `"` also end a word.
//! * `{` opens the block of the keyword line before it, on the same line or on a later one;
//!   `}` closes it and may share its line with words (`virtual_ipaddress { 10.0.0.1/24 }`).
//! * `!` or `#` at the start of a word starts a comment that runs to the end of the line.
//! * `"..."` is one word, spaces included; it must end on the same line. There are no escapes.
//! * `include PATTERN` is replaced by the nodes of the files the pattern matches, in sorted
//!   order, as glob(3) expands it: `*`, `?` and `[...]` match within one path component (not a
//!   leading `.`), and only files are included; a relative
//!   pattern is resolved against the directory of the including file. A pattern matching
//!   nothing is a warning. Each included file must balance its own braces. Includes nest at
//!   most [`MAX_INCLUDE_DEPTH`] deep and a file may not include itself, directly or not.
//! * Blocks nest at most [`MAX_NESTING`] deep.
//!
//! Columns count characters (a tab is one column), from 1.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod lvs;
mod render;
mod vrrp;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use vrrp::{
    GarpSettings, GlobalDefs, InitialState, IpPrefix, MAX_PROCESS_DELAY, ParamMatch, RT_TABLE_MAIN,
    RTPROT_KEEPALIVED, RULE_START_PRIORITY, Route, RouteKind, Rule, RuleAction, ScriptUser,
    SmtpServer, SmtpSettings, SyncGroup, TrackIf, TrackProcess, TrackScript, Vip, VrrpConf,
    VrrpInstance, VrrpScript, VrrpTrackProcess, parse_vrrp, parse_vrrp_str,
};

/// How deep `include` directives may nest.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// How deep `{ ... }` blocks may nest.
pub const MAX_NESTING: usize = 32;
/// How many files one parse may read, includes included.
pub const MAX_FILES: usize = 1024;

/// Where something was read: file, line and column, all as written by the user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    /// The file, as given to the parser or as resolved from an `include`.
    pub file: Arc<Path>,
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// The position a typed item was defined at.
///
/// It does not take part in comparisons: two [`VrrpInstance`]s read from different lines but
/// otherwise identical are equal, so a daemon comparing its configuration before and after a
/// reload only sees real changes.
#[derive(Debug, Clone)]
pub struct SourcePos(pub Pos);

impl PartialEq for SourcePos {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SourcePos {}

impl std::ops::Deref for SourcePos {
    type Target = Pos;
    fn deref(&self) -> &Pos {
        &self.0
    }
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One keyword line of the configuration, with its block if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The first word of the line.
    pub keyword: String,
    /// The other words of the line, quotes removed.
    pub args: Vec<String>,
    /// The nodes of its `{ ... }` block, if it has one.
    pub children: Option<Vec<Self>>,
    /// Where the keyword was read.
    pub pos: Pos,
}

/// Something the parser skipped or changed and the user should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub pos: Pos,
    /// What was skipped or changed, and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// Why a configuration was refused. Each message names the position and what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// The top-level file could not be read.
    #[error("cannot read {}: {source}; check the path and its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file named by an `include` could not be read.
    #[error("{pos}: cannot read included file {}: {source}; check the path and its permissions", path.display())]
    ReadInclude {
        /// The `include` line.
        pos: Pos,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `"` without its closing `"` on the same line.
    #[error("{pos}: unterminated quoted string: close it with `\"` on the same line")]
    UnterminatedQuote {
        /// The opening quote.
        pos: Pos,
    },
    /// A `}` with no open block.
    #[error("{pos}: `}}` closes no block: remove it or add the missing `{{`")]
    UnmatchedClose {
        /// The `}`.
        pos: Pos,
    },
    /// A block still open at the end of its file.
    #[error("{pos}: the block of `{keyword}` is never closed: add the missing `}}`")]
    UnclosedBlock {
        /// The keyword owning the block.
        pos: Pos,
        /// That keyword.
        keyword: String,
    },
    /// A `{` with no keyword line to attach to.
    #[error("{pos}: `{{` follows no keyword: put it after the keyword whose block it opens")]
    StrayOpen {
        /// The `{`.
        pos: Pos,
    },
    /// Blocks nested too deep.
    #[error("{pos}: blocks nest deeper than {limit} levels: check the braces")]
    TooDeep {
        /// The `{` too many.
        pos: Pos,
        /// The limit.
        limit: usize,
    },
    /// Includes nested too deep or in a loop.
    #[error("{pos}: {message}")]
    Include {
        /// The `include` line.
        pos: Pos,
        /// What is wrong: a loop, too deep a nesting, too many files.
        message: String,
    },
    /// A keyword lacks an argument.
    #[error("{pos}: `{keyword}` needs {what}")]
    MissingArgument {
        /// The keyword.
        pos: Pos,
        /// The keyword.
        keyword: String,
        /// The argument missing.
        what: String,
    },
    /// A keyword needs a `{ ... }` block and has none.
    #[error("{pos}: `{keyword}` needs a `{{ ... }}` block")]
    MissingBlock {
        /// The keyword.
        pos: Pos,
        /// The keyword.
        keyword: String,
    },
    /// A value that does not parse (a number, an address, a name from a fixed set).
    #[error("{pos}: {keyword}: `{value}` is not {expected}")]
    BadValue {
        /// The keyword.
        pos: Pos,
        /// The keyword.
        keyword: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A value out of its range.
    #[error("{pos}: {keyword} must be {range}, got {value}")]
    OutOfRange {
        /// The keyword.
        pos: Pos,
        /// The keyword.
        keyword: String,
        /// The accepted range.
        range: String,
        /// The value as written.
        value: String,
    },
    /// Two definitions of the same thing.
    #[error("{pos}: {kind} `{name}` is already defined at {first}: rename or remove one")]
    Duplicate {
        /// The second definition.
        pos: Pos,
        /// What (`vrrp_instance`, `real_server`, ...).
        kind: String,
        /// Its name.
        name: String,
        /// The first definition.
        first: Pos,
    },
    /// A block lacks a mandatory keyword.
    #[error("{pos}: {kind} `{name}` has no `{keyword}`: add one")]
    MissingKeyword {
        /// The block.
        pos: Pos,
        /// The block's keyword.
        kind: String,
        /// The block's name.
        name: String,
        /// The keyword missing.
        keyword: String,
    },
    /// A reference to something not defined.
    #[error("{pos}: {kind} `{name}` is not defined: define it or remove the reference")]
    UnknownReference {
        /// The reference.
        pos: Pos,
        /// What kind of thing is referenced.
        kind: String,
        /// Its name.
        name: String,
    },
    /// Any other inconsistency.
    #[error("{pos}: {message}")]
    Invalid {
        /// Where.
        pos: Pos,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Options of the generic layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Follow `include` directives (default). When false, each is skipped with a warning;
    /// the fuzz targets use this so that they never read the file system.
    pub follow_includes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            follow_includes: true,
        }
    }
}

impl Options {
    /// Options that skip `include` directives (with a warning).
    pub fn without_includes() -> Self {
        Self {
            follow_includes: false,
        }
    }
}

/// Reads `path` (and its includes) into a tree of nodes.
pub fn parse_tree(path: &Path, opts: &Options) -> Result<(Vec<Node>, Vec<Warning>), ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tree_str(&text, path, opts)
}

/// Parses `text` into a tree of nodes; `name` is the file name used in positions and the base
/// of relative includes.
pub fn parse_tree_str(
    text: &str,
    name: impl AsRef<Path>,
    opts: &Options,
) -> Result<(Vec<Node>, Vec<Warning>), ConfError> {
    let file: Arc<Path> = Arc::from(name.as_ref());
    let mut st = IncludeState {
        opts: opts.clone(),
        warnings: Vec::new(),
        chain: vec![file.clone()],
        files: 1,
    };
    let nodes = parse_file_text(text, &file)?;
    let nodes = st.expand(nodes, &file)?;
    Ok((nodes, st.warnings))
}

// ---------------------------------------------------------------------------------------------
// Lexer and block parser

enum Tok {
    Word(String),
    Open,
    Close,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn lex(text: &str, file: &Arc<Path>) -> Result<Vec<(Tok, Pos)>, ConfError> {
    let mut out = Vec::new();
    for (idx, line) in text.split('\n').enumerate() {
        let line_no = to_u32(idx.saturating_add(1));
        let chars: Vec<char> = line.chars().collect();
        let pos = |i: usize| Pos {
            file: file.clone(),
            line: line_no,
            col: to_u32(i.saturating_add(1)),
        };
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            match c {
                '!' | '#' => break,
                '{' => {
                    out.push((Tok::Open, pos(i)));
                    i += 1;
                }
                '}' => {
                    out.push((Tok::Close, pos(i)));
                    i += 1;
                }
                '"' => {
                    let rest = chars.get(i + 1..).unwrap_or(&[]);
                    let Some(len) = rest.iter().position(|&c| c == '"') else {
                        return Err(ConfError::UnterminatedQuote { pos: pos(i) });
                    };
                    let word: String = rest.iter().take(len).collect();
                    out.push((Tok::Word(word), pos(i)));
                    i += len + 2;
                }
                _ => {
                    let start = i;
                    while let Some(&c) = chars.get(i) {
                        if c.is_whitespace() || matches!(c, '{' | '}' | '"') {
                            break;
                        }
                        i += 1;
                    }
                    let word: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                    out.push((Tok::Word(word), pos(start)));
                }
            }
        }
    }
    Ok(out)
}

/// Parses one file's text into nodes, without expanding includes.
fn parse_file_text(text: &str, file: &Arc<Path>) -> Result<Vec<Node>, ConfError> {
    let toks = lex(text, file)?;
    let mut cur: Vec<Node> = Vec::new();
    // Each open block: the list it belongs to and its owner (children not yet set).
    let mut stack: Vec<(Vec<Node>, Node)> = Vec::new();
    // The line of the last keyword line still accepting arguments.
    let mut open_line: Option<u32> = None;
    for (tok, pos) in toks {
        match tok {
            Tok::Word(w) => match cur.last_mut() {
                Some(last) if open_line == Some(pos.line) => last.args.push(w),
                _ => {
                    open_line = Some(pos.line);
                    cur.push(Node {
                        keyword: w,
                        args: Vec::new(),
                        children: None,
                        pos,
                    });
                }
            },
            Tok::Open => {
                open_line = None;
                let owner = match cur.pop() {
                    Some(n) if n.children.is_none() => n,
                    Some(n) => {
                        cur.push(n);
                        return Err(ConfError::StrayOpen { pos });
                    }
                    None => return Err(ConfError::StrayOpen { pos }),
                };
                if stack.len() >= MAX_NESTING {
                    return Err(ConfError::TooDeep {
                        pos,
                        limit: MAX_NESTING,
                    });
                }
                stack.push((std::mem::take(&mut cur), owner));
            }
            Tok::Close => {
                open_line = None;
                let Some((outer, mut owner)) = stack.pop() else {
                    return Err(ConfError::UnmatchedClose { pos });
                };
                owner.children = Some(std::mem::replace(&mut cur, outer));
                cur.push(owner);
            }
        }
    }
    if let Some((_, owner)) = stack.pop() {
        return Err(ConfError::UnclosedBlock {
            pos: owner.pos,
            keyword: owner.keyword,
        });
    }
    Ok(cur)
}

// ---------------------------------------------------------------------------------------------
// Includes

struct IncludeState {
    opts: Options,
    warnings: Vec<Warning>,
    /// The files being read, outermost first.
    chain: Vec<Arc<Path>>,
    files: usize,
}

impl IncludeState {
    fn expand(&mut self, nodes: Vec<Node>, file: &Arc<Path>) -> Result<Vec<Node>, ConfError> {
        let mut out = Vec::with_capacity(nodes.len());
        for mut node in nodes {
            if node.keyword != "include" {
                if let Some(children) = node.children.take() {
                    node.children = Some(self.expand(children, file)?);
                }
                out.push(node);
                continue;
            }
            if node.children.is_some() {
                return Err(ConfError::Invalid {
                    pos: node.pos,
                    message: "`include` takes no `{ ... }` block: remove the block".into(),
                });
            }
            let Some(pattern) = node.args.first() else {
                return Err(ConfError::MissingArgument {
                    pos: node.pos,
                    keyword: node.keyword,
                    what: "a file name or pattern".into(),
                });
            };
            if node.args.len() > 1 {
                self.warnings.push(Warning {
                    pos: node.pos.clone(),
                    message: "`include` takes one pattern; extra words ignored".into(),
                });
            }
            if !self.opts.follow_includes {
                self.warnings.push(Warning {
                    pos: node.pos.clone(),
                    message: format!("include `{pattern}` skipped: includes are disabled"),
                });
                continue;
            }
            let base = file.parent().unwrap_or(Path::new(""));
            let full = base.join(pattern);
            let matches = match glob(&full) {
                Ok(m) => m,
                Err(e) => {
                    self.warnings.push(Warning {
                        pos: node.pos.clone(),
                        message: format!("include `{pattern}` is not a valid pattern: {e}"),
                    });
                    continue;
                }
            };
            if matches.is_empty() {
                self.warnings.push(Warning {
                    pos: node.pos.clone(),
                    message: format!("include `{pattern}` matches no file"),
                });
                continue;
            }
            for path in matches {
                out.extend(self.include_one(&node.pos, path)?);
            }
        }
        Ok(out)
    }

    fn include_one(&mut self, pos: &Pos, path: PathBuf) -> Result<Vec<Node>, ConfError> {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        for f in &self.chain {
            let other = std::fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf());
            if other == key {
                return Err(ConfError::Include {
                    pos: pos.clone(),
                    message: format!(
                        "include loop: {} is already being read; remove the include",
                        path.display()
                    ),
                });
            }
        }
        if self.chain.len() > MAX_INCLUDE_DEPTH {
            return Err(ConfError::Include {
                pos: pos.clone(),
                message: format!(
                    "includes nest deeper than {MAX_INCLUDE_DEPTH} levels: flatten them"
                ),
            });
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(ConfError::Include {
                pos: pos.clone(),
                message: format!("more than {MAX_FILES} files included: check the patterns"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfError::ReadInclude {
            pos: pos.clone(),
            path: path.clone(),
            source,
        })?;
        let file: Arc<Path> = Arc::from(path.as_path());
        let nodes = parse_file_text(&text, &file)?;
        self.chain.push(file.clone());
        let res = self.expand(nodes, &file);
        self.chain.pop();
        res
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files matching `pattern` (glob(3) syntax: `*`, `?` and `[...]` within one path
/// component, a leading `.` only matched literally), sorted. A pattern without wildcards
/// matches itself if it exists.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", pattern.display()))?;
    if !has_wildcard(text) {
        return Ok(if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    // The glob crate's `require_literal_leading_dot` also hides dot files from a pattern
    // that starts with a literal `.`, so hidden names are filtered here instead: a name
    // starting with `.` matches only a pattern component that starts with `.` (glob(3)).
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let paths = glob::glob_with(text, opts).map_err(|e| e.to_string())?;
    let hidden_ok = |path: &Path| {
        pattern.components().zip(path.components()).all(|(pc, c)| {
            let (pc, c) = (
                pc.as_os_str().to_string_lossy(),
                c.as_os_str().to_string_lossy(),
            );
            !c.starts_with('.') || pc.starts_with('.')
        })
    };
    // Unreadable directories and entries are skipped, as glob(3) does without GLOB_ERR.
    let mut out: Vec<PathBuf> = paths
        .flatten()
        .filter(|p| p.is_file() && hidden_ok(p))
        .collect();
    out.sort();
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the typed layers

/// Collects warnings while a typed layer walks the tree.
#[derive(Default)]
pub(crate) struct Ctx {
    pub(crate) warnings: Vec<Warning>,
}

impl Ctx {
    pub(crate) fn warn(&mut self, pos: &Pos, message: impl Into<String>) {
        self.warnings.push(Warning {
            pos: pos.clone(),
            message: message.into(),
        });
    }

    /// keepalived's way with a line whose value it cannot use (a bad number, address or
    /// word, a value out of range, a missing argument or block): a message, and the line is
    /// ignored, so
    /// the setting keeps its default. Any other error is returned.
    pub(crate) fn lenient(&mut self, line: Result<(), ConfError>) -> Result<(), ConfError> {
        match line {
            Err(
                e @ (ConfError::BadValue { .. }
                | ConfError::OutOfRange { .. }
                | ConfError::MissingArgument { .. }
                | ConfError::MissingBlock { .. }),
            ) => {
                let pos = match &e {
                    ConfError::BadValue { pos, .. }
                    | ConfError::OutOfRange { pos, .. }
                    | ConfError::MissingArgument { pos, .. }
                    | ConfError::MissingBlock { pos, .. } => pos.clone(),
                    _ => return Err(e),
                };
                let text = e.to_string();
                let what = text.strip_prefix(&format!("{pos}: ")).unwrap_or(&text);
                self.warn(&pos, format!("{what}; line ignored"));
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) fn unknown(&mut self, node: &Node, within: &str) {
        self.warn(
            &node.pos,
            format!("unknown keyword `{}` in {within}; ignored", node.keyword),
        );
    }

    pub(crate) fn unsupported(&mut self, node: &Node) {
        self.warn(
            &node.pos,
            format!("`{}` is not supported; ignored", node.keyword),
        );
    }

    /// Warns when `node` has more than `n` arguments.
    pub(crate) fn max_args(&mut self, node: &Node, n: usize) {
        if node.args.len() > n {
            self.warn(
                &node.pos,
                format!(
                    "`{}` takes {n} argument(s); extra words ignored",
                    node.keyword
                ),
            );
        }
    }

    /// Warns when `node` has a block it does not use.
    pub(crate) fn no_block(&mut self, node: &Node) {
        if node.children.is_some() {
            self.warn(
                &node.pos,
                format!("`{}` takes no block; block ignored", node.keyword),
            );
        }
    }
}

/// The `i`th argument of `node`.
pub(crate) fn arg<'a>(node: &'a Node, i: usize, what: &str) -> Result<&'a str, ConfError> {
    node.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| ConfError::MissingArgument {
            pos: node.pos.clone(),
            keyword: node.keyword.clone(),
            what: what.into(),
        })
}

/// The block of `node`.
pub(crate) fn block(node: &Node) -> Result<&[Node], ConfError> {
    node.children
        .as_deref()
        .ok_or_else(|| ConfError::MissingBlock {
            pos: node.pos.clone(),
            keyword: node.keyword.clone(),
        })
}

pub(crate) fn bad_value(node: &Node, value: &str, expected: &str) -> ConfError {
    ConfError::BadValue {
        pos: node.pos.clone(),
        keyword: node.keyword.clone(),
        value: value.into(),
        expected: expected.into(),
    }
}

pub(crate) fn out_of_range(node: &Node, value: &str, range: &str) -> ConfError {
    ConfError::OutOfRange {
        pos: node.pos.clone(),
        keyword: node.keyword.clone(),
        range: range.into(),
        value: value.into(),
    }
}

/// An integer in `min..=max` from argument `i`.
pub(crate) fn int_arg(node: &Node, i: usize, min: i64, max: i64) -> Result<i64, ConfError> {
    let s = arg(node, i, "a number")?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_value(node, s, "a whole number"));
    }
    let range = || format!("{min}..={max}");
    let v: i64 = s.parse().map_err(|_| out_of_range(node, s, &range()))?;
    if v < min || v > max {
        return Err(out_of_range(node, s, &range()));
    }
    Ok(v)
}

/// Converts an integer already range-checked into a narrower type.
pub(crate) fn narrow<T: TryFrom<i64>>(node: &Node, v: i64) -> Result<T, ConfError> {
    T::try_from(v).map_err(|_| out_of_range(node, &v.to_string(), "a smaller number"))
}

/// Parses decimal seconds (`2`, `0.5`, `1.25`), at most nanosecond precision.
pub(crate) fn parse_secs(s: &str) -> Option<Duration> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: u32 = 0;
    for (k, b) in frac.bytes().enumerate() {
        if k >= 9 {
            if b != b'0' {
                return None;
            }
            continue;
        }
        nanos = nanos * 10 + u32::from(b - b'0');
    }
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    Some(Duration::new(secs, nanos))
}

/// Writes a duration as decimal seconds, the inverse of [`parse_secs`].
pub(crate) fn fmt_secs(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

/// Seconds in `min..=max` from argument `i`.
pub(crate) fn secs_arg(
    node: &Node,
    i: usize,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfError> {
    let s = arg(node, i, "a number of seconds")?;
    let d = parse_secs(s).ok_or_else(|| {
        bad_value(
            node,
            s,
            "a number of seconds (digits, optionally with a decimal point)",
        )
    })?;
    if d < min || d > max {
        return Err(out_of_range(
            node,
            s,
            &format!("{}..={} seconds", fmt_secs(min), fmt_secs(max)),
        ));
    }
    Ok(d)
}

/// An IP address from argument `i`.
pub(crate) fn ip_arg(node: &Node, i: usize) -> Result<std::net::IpAddr, ConfError> {
    let s = arg(node, i, "an IP address")?;
    s.parse()
        .map_err(|_| bad_value(node, s, "an IPv4 or IPv6 address"))
}

/// keepalived's booleans: `true`/`on`/`yes`, `false`/`off`/`no` (lower case only); no
/// argument is true. Anything else is warned about and the keyword ignored (`None`).
pub(crate) fn bool_arg(n: &Node, ctx: &mut Ctx) -> Option<bool> {
    ctx.max_args(n, 1);
    match n.args.first().map(String::as_str) {
        None | Some("true" | "on" | "yes") => Some(true),
        Some("false" | "off" | "no") => Some(false),
        Some(other) => {
            ctx.warn(
                &n.pos,
                format!(
                    "`{}`: invalid value `{other}` (true/on/yes or false/off/no); ignored",
                    n.keyword
                ),
            );
            None
        }
    }
}

/// The rest of the line as one command string (`notify_master /bin/x arg`).
pub(crate) fn command_arg(node: &Node) -> Result<String, ConfError> {
    if node.args.is_empty() {
        return Err(ConfError::MissingArgument {
            pos: node.pos.clone(),
            keyword: node.keyword.clone(),
            what: "a command".into(),
        });
    }
    Ok(node.args.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secs_round_trip() {
        for s in ["0", "1", "0.01", "1.5", "40.95", "0.000000001"] {
            let d = parse_secs(s).unwrap_or_default();
            assert_eq!(fmt_secs(d), s);
        }
        assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("1."), Some(Duration::from_secs(1)));
        for s in [
            "",
            ".",
            "-1",
            "1e3",
            "0x1",
            "1.0000000001",
            "99999999999999999999",
        ] {
            assert_eq!(parse_secs(s), None, "{s}");
        }
    }

    #[test]
    fn wildcards() {
        let dir = std::env::temp_dir().join(format!("kaconf-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for f in [
            "a.conf",
            "b.conf",
            ".hidden.conf",
            "a.confx",
            "abc",
            "ac",
            "xxaxxb",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let names = |pat: &str| -> Vec<String> {
            glob(&dir.join(pat))
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("*.conf"), ["a.conf", "b.conf"]);
        assert_eq!(names("a?c"), ["abc"]);
        assert_eq!(names("*a*b"), ["xxaxxb"]);
        assert_eq!(names("[ab].conf"), ["a.conf", "b.conf"]);
        assert_eq!(names(".*.conf"), [".hidden.conf"]);
        // Directories never match a wildcard; a plain path matches itself when it exists.
        assert!(names("s*").is_empty());
        assert_eq!(names("abc"), ["abc"]);
        assert!(names("missing").is_empty());
        assert!(glob(&dir.join("[")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
