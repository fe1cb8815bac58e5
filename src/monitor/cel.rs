//! Custom-check conditions (`expect:`) in CEL, the expression language of Kubernetes and
//! blackbox_exporter. This is the only module that touches the `cel` crate (cel-rust), whose
//! API changes with each minor release: everything else sees [`Condition`], [`CheckVars`]
//! and [`CelError`].
//!
//! The crate's traps, and what this module does about each:
//! - **It has no static type checker.** So [`Condition::compile`] walks the parsed
//!   expression itself and refuses a variable that is not one of [`Var::ALL`] (comprehension
//!   variables such as `t` in `tools.exists(t, …)` are in scope only inside their macro).
//!   The crate's `Program::references()` is not enough: it lists comprehension variables as
//!   free ones. Types are still only checked at run time, so [`Condition::eval`] turns every
//!   runtime error (a missing key, a wrong type, a result that is not a bool) into an `Err`
//!   with a message: a failed check, never a panic.
//! - **Its parser and evaluator recurse.** A deeply nested expression exhausts a 2 MiB stack
//!   (tokio's workers) in a debug build. So an expression is refused above
//!   [`MAX_EXPR_BYTES`], or when its brackets and `?:` nest deeper than [`MAX_NESTING`]
//!   (measured on the text, before parsing); it is compiled on a thread of its own with a
//!   [`BIG_STACK`] stack; and a parsed tree deeper than [`MAX_TREE_DEPTH`] (chains such as
//!   `1 + 1 + …` or `a.b.c…` nest without brackets) is refused there. The evaluator is
//!   hungrier still: measured on a debug build, about 37 KiB of stack per tree level (64
//!   levels overflow 2 MiB). So a condition up to [`INLINE_EVAL_DEPTH`] deep, which is every
//!   ordinary one, is evaluated on the caller's thread, and a deeper one on a scoped thread
//!   with a [`BIG_STACK`] stack.
//! - **It has no cost budget.** Each nested macro (`exists`, `all`, `map`, …) multiplies the
//!   work by the length of its list, so nesting is capped at [`MAX_MACRO_NESTING`]; with the
//!   size caps, the work is at worst quadratic in the data ([`CheckVars`], bounded by the
//!   checks' body cap). An evaluation cannot be interrupted: keep the body cap modest.
//!
//! - **Functions resolve at run time.** An unknown function (`nosuch(body)`) is an
//!   evaluation error, not a compile error: the crate keeps no list to check names against.
//!   The crate is built without its default features, so `matches` (regex), `timestamp`
//!   and `duration` (chrono) and `base64` are not there; `size`, `contains`, `startsWith`,
//!   `endsWith`, `in`, the conversions and the macros are.
//!
//! Variables: `status` (int, or null when the check made no HTTP request), `headers` (map of
//! lowercase name to value), `body` (the JSON when it parses, else a string), `latency_ms`
//! (double), `tools` (list of `{name, description}`), `result` (the `tools/call` result, with
//! `isError` false and `content` empty when the server left them out), `server` (`name`,
//! `version`, `protocol_version`, each null when unknown) and `cert_days_left` (int or null).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr};
use cel::{Env, IdedExpr, Program, Value};

/// Longest expression accepted, in bytes.
pub const MAX_EXPR_BYTES: usize = 4 * 1024;
/// Deepest nesting of `(`, `[`, `{` and `?:` accepted, counted on the text before parsing
/// (the crate's own parser limit, 96, is never reached).
pub const MAX_NESTING: usize = 32;
/// Deepest parsed tree accepted: bounds the evaluator's recursion.
pub const MAX_TREE_DEPTH: usize = 100;
/// Deepest tree evaluated on the caller's stack (at most about 600 KiB of it in debug).
pub const INLINE_EVAL_DEPTH: usize = 16;
/// Deepest nesting of macros (`all`, `exists`, `exists_one`, `map`, `filter`) accepted.
pub const MAX_MACRO_NESTING: usize = 2;
/// Stack of the threads that parse an expression, and evaluate a deep one.
pub const BIG_STACK: usize = 16 * 1024 * 1024;
/// Deepest JSON converted into a CEL value; deeper parts become null (serde_json parses at
/// most 128 levels anyway).
const MAX_JSON_DEPTH: usize = 128;
/// Longest runtime error message kept: the crate prints whole values into some of them.
const MAX_MESSAGE_CHARS: usize = 300;
/// CEL's type names, which parse as identifiers (`type(status) == int`).
const TYPE_NAMES: [&str; 11] = [
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// An expression that cannot be used: a config error at load time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    /// Longer than [`MAX_EXPR_BYTES`].
    #[error("the expression is {len} bytes, above the {MAX_EXPR_BYTES}-byte limit; split it into several checks")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Nested deeper than [`MAX_NESTING`], [`MAX_TREE_DEPTH`] or [`MAX_MACRO_NESTING`].
    #[error("the expression nests more than {limit} {what} deep at {}; split it into several checks", at(*line, *column))]
    TooDeep {
        /// What nests: `brackets and conditionals`, `operations` or `macros`.
        what: &'static str,
        /// The limit crossed.
        limit: usize,
        /// 1-based line where it was crossed.
        line: usize,
        /// 1-based column (in characters) where it was crossed.
        column: usize,
    },
    /// Not valid CEL.
    #[error("syntax error in CEL expression {expr:?} at {}: {message}", at(*line, *column))]
    Syntax {
        /// The expression.
        expr: String,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A variable that no check provides.
    #[error("unknown variable `{name}` in CEL expression {expr:?} at {}; the variables are {}", at(*line, *column), Var::names())]
    UnknownVariable {
        /// The expression.
        expr: String,
        /// The variable.
        name: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column, in characters.
        column: usize,
    },
    /// The compiler thread could not start, or the parser panicked.
    #[error("cannot compile CEL expression {expr:?}: {message}")]
    Internal {
        /// The expression.
        expr: String,
        /// What went wrong.
        message: String,
    },
}

impl CelError {
    /// Where in the expression the error is, as 1-based (line, column), when known: the
    /// config turns it into a position in the file.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Self::TooDeep { line, column, .. }
            | Self::Syntax { line, column, .. }
            | Self::UnknownVariable { line, column, .. }
                if *line > 0 =>
            {
                Some((*line, *column))
            }
            _ => None,
        }
    }
}

/// `column C`, or `line L column C` for a multi-line expression.
fn at(line: usize, column: usize) -> String {
    match line {
        0 => "an unknown position".to_owned(),
        1 => format!("column {column}"),
        _ => format!("line {line} column {column}"),
    }
}

/// A variable an expression may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// `status`: the HTTP status.
    Status,
    /// `headers`: the HTTP response headers.
    Headers,
    /// `body`: the HTTP response body.
    Body,
    /// `latency_ms`: how long the check took.
    LatencyMs,
    /// `tools`: the server's tools.
    Tools,
    /// `result`: the `tools/call` result.
    Result,
    /// `server`: the server's name, version and protocol version.
    Server,
    /// `cert_days_left`: days until the TLS certificate expires.
    CertDaysLeft,
}

impl Var {
    /// Every variable, in the order the docs list them.
    pub const ALL: [Self; 8] = [
        Self::Status,
        Self::Headers,
        Self::Body,
        Self::LatencyMs,
        Self::Tools,
        Self::Result,
        Self::Server,
        Self::CertDaysLeft,
    ];

    /// Its name in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Headers => "headers",
            Self::Body => "body",
            Self::LatencyMs => "latency_ms",
            Self::Tools => "tools",
            Self::Result => "result",
            Self::Server => "server",
            Self::CertDaysLeft => "cert_days_left",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// `status, headers, … and cert_days_left`.
    fn names() -> String {
        let names: Vec<_> = Self::ALL.iter().map(|v| v.name()).collect();
        let (last, rest) = names.split_last().expect("variables");
        format!("{} and {last}", rest.join(", "))
    }
}

/// A tool as `tools` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolVar {
    /// Its name.
    pub name: String,
    /// Its description (empty when it has none).
    pub description: String,
}

/// The server as `server` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerVars {
    /// `serverInfo.name`.
    pub name: Option<String>,
    /// `serverInfo.version`.
    pub version: Option<String>,
    /// The negotiated protocol version.
    pub protocol_version: Option<String>,
}

/// What one check observed, typed: the values of the variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckVars {
    /// HTTP status, when the check made an HTTP request.
    pub status: Option<u16>,
    /// Response headers by name (looked up in lowercase: `headers["content-type"]`).
    pub headers: BTreeMap<String, String>,
    /// The body: JSON when it parses, else a string; see [`CheckVars::body_from_bytes`].
    pub body: serde_json::Value,
    /// How long the check took.
    pub latency_ms: f64,
    /// The server's tools.
    pub tools: Vec<ToolVar>,
    /// The `tools/call` result (`isError`, `content`, `structuredContent`).
    pub result: Option<serde_json::Value>,
    /// The server.
    pub server: ServerVars,
    /// Days left on the TLS certificate, for an `https` check.
    pub cert_days_left: Option<i64>,
}

impl CheckVars {
    /// A body as `body` shows it: its JSON when it parses, else its text (lossy UTF-8).
    pub fn body_from_bytes(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        })
    }

    /// The CEL value of one variable.
    fn value(&self, var: Var) -> Value {
        match var {
            Var::Status => self.status.map_or(Value::Null, |s| Value::Int(s.into())),
            Var::Headers => Value::from(
                self.headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), Value::from(v.as_str())))
                    .collect::<HashMap<_, _>>(),
            ),
            Var::Body => json(&self.body, 0),
            Var::LatencyMs => Value::Float(self.latency_ms),
            Var::Tools => Value::List(Arc::new(
                self.tools
                    .iter()
                    .map(|t| {
                        Value::from(HashMap::from([
                            ("name", Value::from(t.name.as_str())),
                            ("description", Value::from(t.description.as_str())),
                        ]))
                    })
                    .collect(),
            )),
            Var::Result => match &self.result {
                Some(serde_json::Value::Object(o)) => {
                    // MCP defaults these; a condition should not fail because a server left
                    // them out.
                    let mut m = object(o, 0);
                    m.entry("isError".to_owned()).or_insert(Value::Bool(false));
                    m.entry("content".to_owned())
                        .or_insert_with(|| Value::List(Arc::new(Vec::new())));
                    Value::from(m)
                }
                Some(other) => json(other, 0),
                None => Value::Null,
            },
            Var::Server => {
                let s = &self.server;
                let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
                Value::from(HashMap::from([
                    ("name", opt(&s.name)),
                    ("version", opt(&s.version)),
                    ("protocol_version", opt(&s.protocol_version)),
                ]))
            }
            Var::CertDaysLeft => self.cert_days_left.map_or(Value::Null, Value::Int),
        }
    }
}

/// A JSON value as a CEL value: integers as `int` (or `uint` above `i64`), other numbers as
/// `double`.
fn json(v: &serde_json::Value, depth: usize) -> Value {
    use serde_json::Value as J;
    if depth > MAX_JSON_DEPTH {
        return Value::Null;
    }
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::List(Arc::new(a.iter().map(|e| json(e, depth + 1)).collect())),
        J::Object(o) => Value::from(object(o, depth)),
    }
}

/// A JSON object's members as CEL values.
fn object(o: &serde_json::Map<String, serde_json::Value>, depth: usize) -> HashMap<String, Value> {
    o.iter()
        .map(|(k, e)| (k.clone(), json(e, depth + 1)))
        .collect()
}

/// The standard environment, built once: building it registers every function.
fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
}

/// A compiled `expect` expression. Cloning shares the compiled program; two conditions are
/// equal when their text is (what a config reload compares).
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
    /// The variables it uses, so only those are converted at each evaluation.
    vars: Vec<Var>,
    /// Depth of its tree: above [`INLINE_EVAL_DEPTH`] it is evaluated on a big stack.
    depth: usize,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Condition {}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("source", &self.source)
            .field("vars", &self.vars)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl Condition {
    /// Check and compile `expr`: refuse it when too long or too deep, on a syntax error, or
    /// when it uses a variable that does not exist. Blocks while a thread of its own
    /// compiles it (well under a millisecond for an ordinary expression in a release build).
    /// Call it at config load, never per check.
    pub fn compile(expr: &str) -> Result<Self, CelError> {
        if expr.len() > MAX_EXPR_BYTES {
            return Err(CelError::TooLong { len: expr.len() });
        }
        if let Some(offset) = too_deep_at(expr) {
            let (line, column) = line_col(expr, offset);
            return Err(CelError::TooDeep {
                what: "brackets and conditionals",
                limit: MAX_NESTING,
                line,
                column,
            });
        }
        let source = expr.to_owned();
        let internal = |message: String| CelError::Internal {
            expr: expr.to_owned(),
            message,
        };
        let worker = std::thread::Builder::new()
            .name("cel-compile".to_owned())
            .stack_size(BIG_STACK)
            .spawn(move || compile_here(source))
            .map_err(|e| internal(format!("cannot start its compiler thread: {e}")))?;
        worker
            .join()
            .map_err(|_| internal("the CEL parser panicked".to_owned()))?
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables it uses, in [`Var::ALL`] order.
    pub fn variables(&self) -> &[Var] {
        &self.vars
    }

    /// Evaluate against one check's values. `Err` carries why it could not give a bool (a
    /// missing key, a wrong type, a non-bool result), in words fit for the check's message:
    /// it does not repeat the expression, which the check's config already holds. Never
    /// panics.
    pub fn eval(&self, vars: &CheckVars) -> Result<bool, String> {
        if self.depth <= INLINE_EVAL_DEPTH {
            return self.eval_here(vars);
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cel-eval".to_owned())
                .stack_size(BIG_STACK)
                .spawn_scoped(scope, || self.eval_here(vars))
                .map_err(|e| format!("expect could not start its evaluator thread: {e}"))?
                .join()
                .unwrap_or_else(|_| Err("expect crashed the CEL evaluator".to_owned()))
        })
    }

    fn eval_here(&self, vars: &CheckVars) -> Result<bool, String> {
        let mut ctx = cel::Context::with_env(env());
        for v in &self.vars {
            ctx.add_variable_from_value(v.name(), vars.value(*v));
        }
        // The crate is not known to panic here, but a check must never take the daemon down.
        let out = catch_unwind(AssertUnwindSafe(|| self.program.execute(&ctx)));
        match out {
            Ok(Ok(Value::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(format!(
                "expect gave {}, not a bool",
                cut(&format!("{other:?}"))
            )),
            Ok(Err(e)) => Err(format!("expect failed: {}", cut(&e.to_string()))),
            Err(_) => Err("expect crashed the CEL evaluator".to_owned()),
        }
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters of `s`.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Parse and check on the current (large-stack) thread. Everything that recurses over the
/// tree happens here, including dropping a refused one.
fn compile_here(source: String) -> Result<Condition, CelError> {
    let program = env().compile(&source).map_err(|errs| {
        let first = errs.errors.first();
        let (line, column) = first.map_or((0, 0), |e| {
            (
                usize::try_from(e.pos.0).unwrap_or(0),
                usize::try_from(e.pos.1).unwrap_or(0),
            )
        });
        let message = first.map_or_else(
            || "unknown error".to_owned(),
            |e| match (&e.source, e.msg.as_str()) {
                (Some(inner), "UNKNOWN") => inner.to_string(),
                (_, msg) => msg.strip_prefix("Syntax error: ").unwrap_or(msg).to_owned(),
            },
        );
        if message.contains("Recursion limit") {
            // The crate's own limit (our text scan should stop such input first); its
            // position is a token index, not a column.
            return CelError::TooDeep {
                what: "operations",
                limit: MAX_TREE_DEPTH,
                line: 0,
                column: 0,
            };
        }
        CelError::Syntax {
            expr: source.clone(),
            line,
            column,
            message,
        }
    })?;
    let mut w = Walk::default();
    w.expr(program.expression(), 1);
    let pos = |id: u64| {
        program
            .source_info()
            .offset_for(id)
            .map_or((0, 0), |(start, _)| {
                line_col(&source, usize::try_from(start).unwrap_or(0))
            })
    };
    if w.deepest.0 > MAX_TREE_DEPTH {
        let (line, column) = pos(w.deepest.1);
        return Err(CelError::TooDeep {
            what: "operations",
            limit: MAX_TREE_DEPTH,
            line,
            column,
        });
    }
    if w.deepest_macro.0 > MAX_MACRO_NESTING {
        let (line, column) = pos(w.deepest_macro.1);
        return Err(CelError::TooDeep {
            what: "macros",
            limit: MAX_MACRO_NESTING,
            line,
            column,
        });
    }
    if let Some((name, id)) = w.unknown {
        let (line, column) = pos(id);
        return Err(CelError::UnknownVariable {
            expr: source.clone(),
            name: name.to_owned(),
            line,
            column,
        });
    }
    let depth = w.deepest.0;
    let mut vars = w.vars;
    vars.sort();
    vars.dedup();
    Ok(Condition {
        source,
        program: Arc::new(program),
        vars,
        depth,
    })
}

/// The free variables and the depth of a parsed expression.
#[derive(Default)]
struct Walk<'a> {
    /// Comprehension variables in scope here.
    bound: Vec<&'a str>,
    vars: Vec<Var>,
    /// The first identifier that is neither a variable nor in scope, with its node id.
    unknown: Option<(&'a str, u64)>,
    /// The deepest node seen: (depth, node id).
    deepest: (usize, u64),
    /// Macros (comprehensions) around the current node.
    macros: usize,
    /// The most deeply nested macro: (nesting, node id).
    deepest_macro: (usize, u64),
}

impl<'a> Walk<'a> {
    fn expr(&mut self, e: &'a IdedExpr, depth: usize) {
        if depth > self.deepest.0 {
            self.deepest = (depth, e.id);
        }
        if depth > MAX_TREE_DEPTH {
            return; // refused anyway; don't recurse further
        }
        let d = depth + 1;
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => {
                if name.starts_with('@')
                    || self.bound.contains(&name.as_str())
                    || TYPE_NAMES.contains(&name.as_str())
                {
                } else if let Some(v) = Var::from_name(name) {
                    self.vars.push(v);
                } else if self.unknown.is_none() {
                    self.unknown = Some((name, e.id));
                }
            }
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.expr(t, d);
                }
                for a in &c.args {
                    self.expr(a, d);
                }
            }
            Expr::Comprehension(c) => {
                // The range is evaluated once, outside the loop: `a.map(…).exists(…)` is two
                // loops in a row, not one inside the other.
                self.expr(&c.iter_range, d);
                self.expr(&c.accu_init, d);
                self.macros += 1;
                if self.macros > self.deepest_macro.0 {
                    self.deepest_macro = (self.macros, e.id);
                }
                let scope = self.bound.len();
                self.bound.push(&c.iter_var);
                self.bound.extend(c.iter_var2.as_deref());
                self.bound.push(&c.accu_var);
                self.expr(&c.loop_cond, d);
                self.expr(&c.loop_step, d);
                self.expr(&c.result, d);
                self.bound.truncate(scope);
                self.macros -= 1;
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.expr(el, d);
                }
            }
            Expr::Map(m) => self.entries(&m.entries, d),
            Expr::Struct(s) => self.entries(&s.entries, d),
            Expr::Select(s) => self.expr(&s.operand, d),
        }
    }

    fn entries(&mut self, entries: &'a [cel::common::ast::IdedEntryExpr], d: usize) {
        for en in entries {
            match &en.expr {
                EntryExpr::StructField(f) => self.expr(&f.value, d),
                EntryExpr::MapEntry(m) => {
                    self.expr(&m.key, d);
                    self.expr(&m.value, d);
                }
            }
        }
    }
}

/// The byte offset where nesting first exceeds [`MAX_NESTING`], if it does. Each open
/// bracket counts, and so does each `?` until the bracket around it closes (the else branch
/// of `a ? b : c ? d : e` nests). Brackets inside string literals do not count; an
/// unterminated literal's do, since the parser's lexer may skip its quote and read on.
fn too_deep_at(expr: &str) -> Option<usize> {
    let b = expr.as_bytes();
    // The `?`s seen at each open bracket level, outermost first.
    let mut levels = vec![0usize];
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c @ (b'(' | b'[' | b'{' | b'?') => {
                if c == b'?' {
                    *levels.last_mut().expect("the outermost level stays") += 1;
                } else {
                    levels.push(0);
                }
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' if levels.len() > 1 => {
                depth -= 1 + levels.pop().unwrap_or(0);
            }
            q @ (b'"' | b'\'') => {
                let raw = i > 0
                    && matches!(b[i - 1], b'r' | b'R')
                    && !(i > 1 && (b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                if let Some(end) = string_end(b, i, q, raw) {
                    i = end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the closing quote of the literal opening at `start`, if it closes.
fn string_end(b: &[u8], start: usize, q: u8, raw: bool) -> Option<usize> {
    let triple = b.get(start + 1) == Some(&q) && b.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    while i < b.len() {
        if b[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if b[i] == q {
            if !triple {
                return Some(i);
            }
            if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                return Some(i + 2);
            }
        } else if b[i] == b'\n' && !triple {
            return None;
        }
        i += 1;
    }
    None
}

/// 1-based (line, column in characters) of the byte `offset` (our scan's and the parser's
/// offsets are both in bytes).
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mcp_vars() -> CheckVars {
        CheckVars {
            latency_ms: 350.0,
            tools: vec![
                ToolVar {
                    name: "get_forecast".into(),
                    description: "Forecast for a place".into(),
                },
                ToolVar {
                    name: "get_alerts".into(),
                    description: String::new(),
                },
            ],
            result: Some(serde_json::json!({
                "content": [{"type": "text", "text": "sunny"}],
                "isError": false
            })),
            server: ServerVars {
                name: Some("weather".into()),
                version: Some("1.4.0".into()),
                protocol_version: Some("2025-06-18".into()),
            },
            ..CheckVars::default()
        }
    }

    fn eval(expr: &str, vars: &CheckVars) -> Result<bool, String> {
        Condition::compile(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(vars)
    }

    #[test]
    fn the_issues_example_passes_and_fails_on_the_right_results() {
        let expr = "!result.isError && size(result.content) > 0 && latency_ms < 2000";
        let c = Condition::compile(expr).unwrap();
        assert_eq!(c.variables(), [Var::LatencyMs, Var::Result]);
        let with = |result: serde_json::Value, latency_ms: f64| CheckVars {
            result: Some(result),
            latency_ms,
            ..mcp_vars()
        };
        let text = serde_json::json!([{"type": "text", "text": "sunny"}]);
        let table = [
            (
                "a good result",
                with(
                    serde_json::json!({"content": text, "isError": false}),
                    350.0,
                ),
                true,
            ),
            (
                "isError",
                with(serde_json::json!({"content": text, "isError": true}), 350.0),
                false,
            ),
            (
                "empty content",
                with(serde_json::json!({"content": [], "isError": false}), 350.0),
                false,
            ),
            (
                "too slow",
                with(
                    serde_json::json!({"content": text, "isError": false}),
                    2000.0,
                ),
                false,
            ),
            (
                "isError left out (MCP's default: false)",
                with(serde_json::json!({"content": text}), 10.0),
                true,
            ),
            (
                "content left out (empty)",
                with(serde_json::json!({"isError": false}), 10.0),
                false,
            ),
        ];
        for (case, vars, want) in table {
            assert_eq!(c.eval(&vars), Ok(want), "{case}");
        }
    }

    #[test]
    fn tools_membership_and_comprehension_variables() {
        let v = mcp_vars();
        let table = [
            (r#"tools.exists(t, t.name == "get_forecast")"#, true),
            (r#"tools.exists(t, t.name == "delete_everything")"#, false),
            (r#"tools.all(t, t.name.startsWith("get_"))"#, true),
            (
                r#"size(tools) == 2 && tools.map(t, t.name).exists(n, n == "get_alerts")"#,
                true,
            ),
            (r#"tools.exists_one(t, t.description == "")"#, true),
            (
                r#"tools.filter(t, t.name.contains("alert")).size() == 1"#,
                true,
            ),
            (
                r#"tools.exists(t, tools.exists(u, t.name != u.name))"#,
                true,
            ),
        ];
        for (expr, want) in table {
            assert_eq!(eval(expr, &v), Ok(want), "{expr}");
        }
    }

    #[test]
    fn http_variables_body_json_text_headers_status_server_and_cert() {
        let json_body = CheckVars {
            status: Some(200),
            headers: BTreeMap::from([("Content-Type".into(), "application/json".into())]),
            body: CheckVars::body_from_bytes(
                br#"{"status": "ok", "db": {"latency_ms": 12, "up": true}, "n": 3}"#,
            ),
            cert_days_left: Some(30),
            ..mcp_vars()
        };
        let text_body = CheckVars {
            status: Some(503),
            body: CheckVars::body_from_bytes(b"db down\xff"),
            ..mcp_vars()
        };
        let numbers = CheckVars {
            body: serde_json::json!({
                "big": u64::MAX, "ratio": 0.5, "deep": {"a": {"a": {"a": 1}}}
            }),
            ..CheckVars::default()
        };
        let table = [
            (
                r#"body.status == "ok" && body.db.latency_ms < 100 && body.db.up"#,
                &json_body,
                true,
            ),
            (
                "body.n == 3 && body.n > 2.5 && status == 200",
                &json_body,
                true,
            ),
            ("has(body.db) && !has(body.cache)", &json_body, true),
            (
                r#"headers["content-type"].startsWith("application/json")"#,
                &json_body,
                true,
            ),
            (
                r#""content-type" in headers && !("x-missing" in headers)"#,
                &json_body,
                true,
            ),
            ("cert_days_left > 14", &json_body, true),
            (
                r#"body.contains("down") && status >= 500"#,
                &text_body,
                true,
            ),
            (r#"body == "db down\uFFFD""#, &text_body, true),
            (
                r#"server.name == "weather" && server.version.startsWith("1.")"#,
                &text_body,
                true,
            ),
            (
                r#"server.protocol_version >= "2025-03-26""#,
                &text_body,
                true,
            ),
            (
                "body.big == 18446744073709551615u && body.ratio == 0.5",
                &numbers,
                true,
            ),
            ("body.deep.a.a.a == 1", &numbers, true),
        ];
        for (expr, vars, want) in table {
            assert_eq!(eval(expr, vars), Ok(want), "{expr}");
        }
    }

    #[test]
    fn runtime_errors_are_errs_with_a_message_never_panics() {
        let v = CheckVars {
            body: serde_json::json!({"a": 1}),
            ..mcp_vars()
        };
        let table = [
            ("body.missing == 1", "No such key: missing"),
            (
                "result.structuredContent.temp > 0",
                "No such key: structuredContent",
            ),
            ("cert_days_left > 14", "no matching overload"),
            (
                r#"status + "a" == 1"#,
                "Unsupported binary operator 'add': Null",
            ),
            (
                r#"size(result.content) + "a" == 1"#,
                "Unsupported binary operator 'add': Int(1)",
            ),
            ("size(latency_ms) == 1", "no matching overload"),
            ("latency_ms", "gave Float(350.0), not a bool"),
            ("body", "not a bool"),
            ("1 / 0 == 1", "Division by zero"),
            ("tools[5].name == 'x'", "Index out of bounds"),
            // No regex feature: an unknown function fails at run time.
            ("body.matches('a')", "Undeclared reference to 'matches'"),
        ];
        for (expr, want) in table {
            let err = eval(expr, &v).expect_err(expr);
            assert!(err.contains(want), "{expr}: {err}");
            assert!(err.starts_with("expect "), "{expr}: {err}");
        }
        assert_eq!(
            eval("body.missing == 1", &v),
            Err("expect failed: No such key: missing".to_owned())
        );
        let big = CheckVars {
            body: "x".repeat(10_000).into(),
            ..CheckVars::default()
        };
        let err = eval("body + 1 == 2", &big).unwrap_err();
        assert!(
            err.chars().count() < 400,
            "cut to a readable length: {}",
            err.len()
        );
        let err = eval("!result.isError", &CheckVars::default()).unwrap_err();
        assert!(err.starts_with("expect failed: "), "{err}");
    }

    #[test]
    fn compile_errors_have_exact_messages_with_the_expression_and_column() {
        let long = "a".repeat(5 * 1024);
        let vars = "the variables are status, headers, body, latency_ms, tools, result, server \
                    and cert_days_left";
        let expecting = "expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', \
                         NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}";
        let table: Vec<(&str, String)> = vec![
            (
                "status == ",
                format!(
                    "syntax error in CEL expression \"status == \" at column 11: \
                     mismatched input '<EOF>' {expecting}"
                ),
            ),
            (
                "status == 200 &&\n  (latency_ms < 1",
                "syntax error in CEL expression \"status == 200 &&\\n  (latency_ms < 1\" at \
                 line 2 column 18: missing ')' at '<EOF>'"
                    .into(),
            ),
            (
                "latency < 100",
                format!(
                    "unknown variable `latency` in CEL expression \"latency < 100\" at \
                     column 1; {vars}"
                ),
            ),
            (
                r#"tools.exists(t, t.name == "x") && t.name == "y""#,
                format!(
                    "unknown variable `t` in CEL expression \"tools.exists(t, t.name == \
                     \\\"x\\\") && t.name == \\\"y\\\"\" at column 35; {vars}"
                ),
            ),
            (
                &long,
                "the expression is 5120 bytes, above the 4096-byte limit; split it into \
                 several checks"
                    .into(),
            ),
        ];
        for (expr, want) in &table {
            let err = Condition::compile(expr).expect_err(expr);
            assert_eq!(&err.to_string(), want, "{expr}");
        }
        let err = Condition::compile("status ==\n  && true").unwrap_err();
        assert_eq!(err.position(), Some((2, 3)));
        // Columns count characters, not bytes.
        let err = Condition::compile("'éé' == 'x' && foo").unwrap_err();
        assert_eq!(err.position(), Some((1, 16)));
        assert_eq!(Condition::compile(&long).unwrap_err().position(), None);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_without_crashing() {
        let parens = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
        let err = Condition::compile(&parens[..4000]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the expression nests more than 32 brackets and conditionals deep at column 33; \
             split it into several checks"
        );
        let table = [
            format!("{}1{} == 1", "[".repeat(40), "]".repeat(40)),
            format!("{}1{} == 1", "int(".repeat(40), ")".repeat(40)),
            format!("{}true", "true ? true : ".repeat(200)),
            // An unterminated string does not hide what follows it.
            format!("\"{}", "(".repeat(2000)),
            format!("r'\\'{}", "(".repeat(100)),
        ];
        for expr in &table {
            match Condition::compile(expr) {
                Err(CelError::TooDeep { what, limit, .. }) => {
                    assert_eq!(
                        (what, limit),
                        ("brackets and conditionals", MAX_NESTING),
                        "{expr}"
                    );
                }
                other => panic!("{expr}: {other:?}"),
            }
        }
        // Brackets inside string literals are text.
        let in_strings = format!(
            "body.contains(\"{}\") || body.contains('''{}''') || body.contains(r'\\{}')",
            "(".repeat(40),
            "[".repeat(40),
            "{".repeat(40)
        );
        let text = CheckVars {
            body: "plain".into(),
            ..CheckVars::default()
        };
        assert_eq!(eval(&in_strings, &text), Ok(false));
        // At the limit it parses.
        let at_limit = format!("{}true{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(eval(&at_limit, &CheckVars::default()), Ok(true));
    }

    #[test]
    fn long_chains_without_brackets_are_refused_after_parsing_without_crashing() {
        let table = [
            format!("1{} > 0", "+1".repeat(2000)),
            format!("has(body{})", ".a".repeat(2000)),
            format!("body{} == 1", "[0]".repeat(1300)),
        ];
        for expr in &table {
            match Condition::compile(expr) {
                Err(CelError::TooDeep {
                    what,
                    limit,
                    line,
                    column,
                }) => {
                    assert_eq!((what, limit, line), ("operations", MAX_TREE_DEPTH, 1));
                    assert!(column > 1, "{}: points into it", &expr[..20]);
                }
                other => panic!("{}: {other:?}", &expr[..20]),
            }
        }
        // These fold or balance, so they stay shallow whatever their length.
        for expr in [
            format!("{}true", "!".repeat(4000)),
            format!("true{}", " && true".repeat(500)),
            format!("false{}", " || true".repeat(500)),
        ] {
            assert_eq!(
                eval(&expr, &CheckVars::default()),
                Ok(true),
                "{}",
                &expr[..20]
            );
        }
    }

    #[test]
    fn a_deep_condition_is_evaluated_on_a_big_stack() {
        // 90 levels need about 3 MiB of stack in a debug build: more than a test thread has.
        let expr = format!("1{} > 0", " + 1".repeat(90));
        let c = Condition::compile(&expr).unwrap();
        assert!(c.depth > INLINE_EVAL_DEPTH);
        assert_eq!(c.eval(&CheckVars::default()), Ok(true));
        let shallow = Condition::compile("!result.isError && size(result.content) > 0").unwrap();
        assert!(shallow.depth <= INLINE_EVAL_DEPTH, "{}", shallow.depth);
    }

    #[test]
    fn macros_nest_at_most_two_deep_but_may_follow_each_other() {
        let three = "tools.exists(a, tools.exists(b, tools.exists(c, a == c)))";
        match Condition::compile(three) {
            Err(CelError::TooDeep {
                what: "macros",
                limit: 2,
                column,
                ..
            }) => assert_eq!(column, 45, "points at the third macro"),
            other => panic!("{other:?}"),
        }
        let in_a_row = "tools.map(t, t.name).filter(n, n != '').exists(n, n == 'get_alerts')";
        assert_eq!(eval(in_a_row, &mcp_vars()), Ok(true));
    }

    #[test]
    fn type_names_and_macro_variables_are_not_unknown_variables() {
        for expr in [
            "type(status) == int || type(status) == null_type",
            "tools.all(x, x.name != '') && [1, 2].exists(status, status == 2)",
            "{'a': 1}.exists(k, k == 'a')",
        ] {
            assert!(Condition::compile(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn conditions_can_be_shared_across_tasks_and_compare_by_text() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<Condition>();
        shared::<CelError>();
        let a = Condition::compile("status == 200").unwrap();
        assert_eq!(a.clone(), a);
        assert_eq!(a.source(), "status == 200");
        assert_ne!(a, Condition::compile("status == 201").unwrap());
    }
}
