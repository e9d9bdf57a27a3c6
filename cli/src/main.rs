//! `agentriage`: evaluate agent requests against policy bundles.

mod anomaly_cmd;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use agentriage::{Decision, Engine, Error, MAX_REQUEST_BYTES, Outcome};
use clap::{Parser, Subcommand};
use serde_json::json;

mod approval_cmd;
mod bundle_cmd;
mod check;
mod init_cmd;
mod intent_cmd;
mod log_cmd;
mod otlp_cmd;
mod test_cmd;

// A decision allocates many small values in both policy engines; mimalloc
// makes a decision about 15% faster than the system allocator here. Counting
// gives each evaluation its heap budget (`rego.max_eval_bytes`).
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

/// `n` and the noun, singular for 1 and plural otherwise: `1 error`,
/// `2 errors`, `0 errors`. `noun` is the singular; the plural adds `s`.
pub(crate) fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(super::count(1u64, "error"), "1 error");
        assert_eq!(super::count(0u64, "error"), "0 errors");
        assert_eq!(
            super::count(2u64, "signed checkpoint"),
            "2 signed checkpoints"
        );
    }
}

/// Exit codes, documented in `--help`.
pub(crate) mod exit {
    /// Every request was decided.
    pub const OK: u8 = 0;
    /// At least one request could not be decided (malformed input).
    pub const INVALID_INPUT: u8 = 1;
    /// Bad command-line usage (clap's own code, and a `--state` URL that
    /// does not parse).
    pub const USAGE: u8 = 2;
    /// The bundle could not be loaded.
    pub const BUNDLE: u8 = 3;
    /// The input or output could not be read or written.
    pub const IO: u8 = 4;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  every request was decided (whatever the outcomes)
  1  at least one request could not be decided; its line printed an error object
  2  bad command-line usage (or a --state URL that does not parse)
  3  the bundle could not be loaded, or its signature did not verify
  4  the input, a key or a bundle URL could not be read, or the output written";

/// The end of the top-level `--help`: exit codes differ between commands.
const TOP_LEVEL_HELP: &str = "\
Each command lists its own exit codes: agentriage COMMAND --help.
Exit code 2 always means bad command-line usage.";

#[derive(Parser)]
#[command(
    name = "agentriage",
    version,
    about = "Policy decision point for AI agents: execute, reject or escalate",
    after_help = TOP_LEVEL_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide requests against a bundle.
    ///
    /// Reads one JSON request (it may span lines), or JSON Lines with one
    /// request per line, and prints one decision per line as JSON. A line
    /// that is not a valid request prints an error object naming the line
    /// and the JSON path, and the stream goes on.
    #[command(after_help = EXIT_CODES)]
    Eval {
        /// Bundle directory (holding bundle.toml) or bundle archive.
        #[arg(
            long,
            short,
            required_unless_present = "bundle_url",
            conflicts_with = "bundle_url"
        )]
        bundle: Option<PathBuf>,
        /// Fetch the bundle from `http(s)://...` (an archive) or
        /// `oci://HOST/REPOSITORY:TAG` / `@sha256:...` instead.
        #[arg(long)]
        bundle_url: Option<String>,
        /// Trust only the certificate authorities in this PEM file for an
        /// `https://` (or TLS registry) `--bundle-url`, instead of the
        /// Mozilla root certificates.
        #[arg(long, value_name = "FILE")]
        bundle_ca: Option<PathBuf>,
        /// Request file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        /// Print decisions for people instead of JSON.
        #[arg(long)]
        pretty: bool,
        /// Load the bundle only if signed by this public key (PEM); repeat
        /// for several trusted keys.
        #[arg(long = "trusted-key", short = 'k')]
        trusted_keys: Vec<PathBuf>,
        /// Where used intents and approvals and quota counters are kept:
        /// `memory` (default: this process only), `memory:CAPACITY`, or
        /// `redis://[user:password@]host:port/db[?namespace=…&timeout_ms=…]`
        /// to share them with every process using that Redis. When the
        /// store cannot answer, decisions that need it fail closed.
        #[arg(long, value_name = "URL", default_value = "memory")]
        state: String,
        #[command(flatten)]
        log: log_cmd::LogArgs,
        #[command(flatten)]
        otlp: otlp_cmd::OtlpArgs,
    },
    /// Sign bundles and verify their signatures.
    #[command(subcommand, after_help = EXIT_CODES)]
    Bundle(bundle_cmd::BundleCommand),
    /// Run a bundle's policy tests: YAML suites and Rego `test_*` rules.
    ///
    /// PATHs are a bundle directory (its `tests/` are run) and/or test files
    /// and directories; with --bundle, every PATH holds tests. Prints
    /// `test suite::case ... ok` per test, a block per failure with the
    /// expected and actual outcome and every reason that fired, and a summary.
    #[command(after_help = test_cmd::EXIT_CODES)]
    Test {
        /// Bundle directory and/or test files and directories.
        paths: Vec<PathBuf>,
        /// Bundle directory (holding bundle.toml); by default the PATH that holds one.
        #[arg(long, short)]
        bundle: Option<PathBuf>,
        /// Run only tests whose `suite::name` matches this regular expression.
        #[arg(long, value_name = "REGEX")]
        run: Option<String>,
        /// Report format.
        #[arg(long, value_enum, default_value = "human")]
        format: test_cmd::Format,
        /// Report which Rego rules and Cedar policies no test exercised.
        #[arg(long)]
        coverage: bool,
        /// Fail when coverage is below P percent (implies --coverage).
        #[arg(long, value_name = "P")]
        threshold: Option<f64>,
    },
    /// Check a bundle: everything parses and validates, every action the
    /// policies name is in the risk table, every suite parses.
    ///
    /// Prints every problem with file and line, not only the first.
    #[command(after_help = check::EXIT_CODES)]
    Check {
        /// Bundle directory (holding bundle.toml).
        #[arg(long, short)]
        bundle: PathBuf,
        /// Report format: human or json.
        #[arg(long, value_enum, default_value = "human")]
        format: test_cmd::Format,
        /// Also decide the suites' requests, and copies with a field dropped
        /// or retyped, with both Rego evaluators (interpreter and VM): every
        /// difference is a problem.
        #[arg(long)]
        evaluators: bool,
        /// Warn about waivers expiring within this many days (default: the
        /// bundle's `waivers.expiry_warning_days`, else 14).
        #[arg(long, value_name = "DAYS")]
        waiver_horizon_days: Option<u64>,
        /// The time waivers are judged at (RFC 3339); now when absent.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Create a new bundle to start from: manifest, a Rego module, a Cedar
    /// policy, an agent registry, a risk table and a suite covering every
    /// rule.
    ///
    /// DIR must not exist or be empty. The bundle passes `agentriage test
    /// DIR` and `agentriage check --bundle DIR` as written.
    #[command(after_help = init_cmd::EXIT_CODES)]
    Init {
        /// Directory to create the bundle in.
        dir: PathBuf,
        /// The bundle's name; by default the directory's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Train an anomaly model, or score events with one.
    #[command(subcommand)]
    Anomaly(anomaly_cmd::AnomalyCommand),
    /// Signed intents: generate keys, sign, verify.
    Intent {
        #[command(subcommand)]
        command: Box<intent_cmd::IntentCommand>,
    },
    /// Approvals of escalated actions: the action digest, signing.
    Approval {
        #[command(subcommand)]
        command: Box<approval_cmd::ApprovalCommand>,
    },
    /// Decision logs: verify them, generate a signing key.
    Log {
        #[command(subcommand)]
        command: log_cmd::LogCommand,
    },
    /// Re-decide logged requests with a candidate bundle and report every
    /// outcome that changes.
    ///
    /// Each request is decided at its recorded time. Fields the live
    /// bundle redacted from the log are replayed as logged (dropped or
    /// hashed), so those decisions may differ from the original ones; the
    /// report counts them.
    #[command(after_help = log_cmd::REPLAY_EXIT_CODES)]
    Replay {
        /// Decision log segment files, in order.
        #[arg(long, required = true, num_args = 1..)]
        log: Vec<PathBuf>,
        /// The candidate bundle directory.
        #[arg(long, short)]
        bundle: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: log_cmd::Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Eval {
            bundle,
            bundle_url,
            bundle_ca,
            input,
            pretty,
            trusted_keys,
            state,
            log,
            otlp,
        } => ExitCode::from(eval(&EvalArgs {
            bundle: bundle.as_deref(),
            bundle_url: bundle_url.as_deref(),
            bundle_ca: bundle_ca.as_deref(),
            input: &input,
            pretty,
            trusted_keys: &trusted_keys,
            state: &state,
            log: &log,
            otlp: &otlp,
        })),
        Command::Bundle(command) => ExitCode::from(bundle_cmd::run(command)),
        Command::Test {
            paths,
            bundle,
            run,
            format,
            coverage,
            threshold,
        } => ExitCode::from(test_cmd::test(test_cmd::TestArgs {
            bundle,
            paths,
            run,
            format,
            coverage,
            threshold,
        })),
        Command::Check {
            bundle,
            format,
            evaluators,
            waiver_horizon_days,
            now,
        } => ExitCode::from(check::check(
            &bundle,
            format,
            evaluators,
            now.as_deref(),
            waiver_horizon_days,
        )),
        Command::Init { dir, name } => ExitCode::from(init_cmd::init(&dir, name.as_deref())),
        Command::Anomaly(command) => ExitCode::from(anomaly_cmd::run(command)),
        Command::Intent { command } => ExitCode::from(intent_cmd::run(*command)),
        Command::Approval { command } => ExitCode::from(approval_cmd::run(*command)),
        Command::Log { command } => ExitCode::from(log_cmd::log(command)),
        Command::Replay {
            log,
            bundle,
            format,
        } => ExitCode::from(log_cmd::replay(&log, &bundle, format)),
    }
}

/// The options of `agentriage eval`.
struct EvalArgs<'a> {
    bundle: Option<&'a std::path::Path>,
    bundle_url: Option<&'a str>,
    bundle_ca: Option<&'a std::path::Path>,
    input: &'a str,
    pretty: bool,
    trusted_keys: &'a [PathBuf],
    state: &'a str,
    log: &'a log_cmd::LogArgs,
    otlp: &'a otlp_cmd::OtlpArgs,
}

fn eval(args: &EvalArgs<'_>) -> u8 {
    let EvalArgs {
        bundle,
        bundle_url,
        bundle_ca,
        input,
        pretty,
        trusted_keys,
        state,
        log,
        otlp,
    } = *args;
    let store = match agentriage::state::open(state) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: --state: {e}");
            return exit::USAGE;
        }
    };
    let mut sink = match otlp_cmd::Sink::new(otlp) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: OTLP export: {e}");
            return exit::USAGE;
        }
    };
    let trusted = if trusted_keys.is_empty() {
        None
    } else {
        match bundle_cmd::trusted(trusted_keys) {
            Ok(trusted) => Some(trusted),
            Err(code) => return code,
        }
    };
    let source = match (bundle, bundle_url) {
        (_, Some(url)) => url.to_owned(),
        (Some(path), None) => path.display().to_string(),
        (None, None) => {
            eprintln!("error: give --bundle or --bundle-url");
            return exit::USAGE;
        }
    };
    if bundle_ca.is_some() && bundle_url.is_none() {
        eprintln!("error: --bundle-ca applies to --bundle-url only");
        return exit::USAGE;
    }
    let mut options = agentriage::delivery::SourceOptions::default();
    if let Some(ca) = bundle_ca {
        match std::fs::read(ca) {
            Ok(pem) => options.http.tls_ca_pem = Some(pem),
            Err(e) => {
                eprintln!("error: --bundle-ca: cannot read `{}`: {e}", ca.display());
                return exit::IO;
            }
        }
    }
    let loaded = agentriage::delivery::fetch_bundle(&source, trusted.as_ref(), &options);
    let engine = match loaded.map(|b| Engine::new(b).with_state(store)) {
        Ok(e) => e,
        Err(agentriage::delivery::DeliveryError::Bundle(e)) => {
            eprintln!("error: cannot load bundle: {e}");
            return exit::BUNDLE;
        }
        Err(e) => {
            eprintln!("error: cannot fetch bundle: {e}");
            return exit::IO;
        }
    };
    let (engine, log) = match log_cmd::attach(engine, log) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: cannot open the decision log: {e}");
            return exit::IO;
        }
    };
    let mut code = eval_with(&engine, input, pretty, sink.as_mut());
    if let Some(sink) = sink
        && let Err(e) = sink.finish(engine.metrics())
    {
        // The decisions were printed as made; only their telemetry is lost.
        eprintln!("error: OpenTelemetry export: {e}");
        code = code.max(exit::IO);
    }
    if let Some(log) = log
        && let Err(e) = log.close()
    {
        eprintln!("error: decision log: {e}");
        return exit::IO;
    }
    code
}

fn eval_with(engine: &Engine, input: &str, pretty: bool, sink: Option<&mut otlp_cmd::Sink>) -> u8 {
    let reader: Box<dyn Read> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(input) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("error: cannot read `{input}`: {e}");
                return exit::IO;
            }
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match run(engine, BufReader::new(reader), &mut out, pretty, sink) {
        Ok(0) => exit::OK,
        Ok(_) => exit::INVALID_INPUT,
        Err(e) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}

/// Decides every request of `reader`; returns how many could not be decided.
///
/// If the first request closes on its first line, the input is JSON Lines
/// and every line stands alone (a broken line cannot swallow the next one).
/// Otherwise requests span lines, and each ends where its brackets balance.
fn run(
    engine: &Engine,
    reader: impl BufRead,
    out: &mut impl Write,
    pretty: bool,
    mut sink: Option<&mut otlp_cmd::Sink>,
) -> io::Result<usize> {
    let mut failures = 0;
    let mut emit = |line: usize, text: &str, out: &mut dyn Write| -> io::Result<()> {
        let result = engine.decide_json(text);
        match (&result, sink.as_deref_mut()) {
            (Err(_), _) => failures += 1,
            (Ok(d), Some(sink)) => sink.record(text, d),
            (Ok(_), None) => {}
        }
        write_result(out, line, &result, pretty)?;
        out.flush()
    };
    let mut json_lines: Option<bool> = None;
    let mut pending = String::new();
    let mut depth = Depth::default();
    let mut start = 0;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line?;
        if pending.is_empty() && line.trim().is_empty() {
            continue;
        }
        if json_lines.is_none() {
            let mut first = Depth::default();
            first.feed(&line);
            json_lines = Some(first.balanced());
        }
        if json_lines == Some(true) {
            emit(number, &line, out)?;
            continue;
        }
        if pending.is_empty() {
            start = number;
        }
        pending.push_str(&line);
        pending.push('\n');
        depth.feed(&line);
        if depth.balanced() || pending.len() > MAX_REQUEST_BYTES {
            emit(start, &pending, out)?;
            pending.clear();
            depth = Depth::default();
        }
    }
    if !pending.trim().is_empty() {
        emit(start, &pending, out)?;
    }
    Ok(failures)
}

/// Bracket depth of JSON text fed line by line, ignoring brackets in strings.
#[derive(Default)]
struct Depth {
    open: i64,
    in_string: bool,
    escaped: bool,
}

impl Depth {
    fn feed(&mut self, text: &str) {
        for b in text.bytes() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.open += 1,
                b'}' | b']' => self.open -= 1,
                _ => {}
            }
        }
    }

    fn balanced(&self) -> bool {
        self.open <= 0 && !self.in_string
    }
}

fn write_result(
    out: &mut dyn Write,
    line: usize,
    result: &Result<Decision, Error>,
    pretty: bool,
) -> io::Result<()> {
    match result {
        Ok(d) if pretty => write_pretty(out, d),
        Ok(d) => writeln!(out, "{}", d.to_json()),
        Err(e) => {
            let error = match e {
                Error::Request(r) => json!({
                    "kind": r.kind().as_str(),
                    "path": r.path(),
                    "message": r.message(),
                }),
                other => json!({"kind": "error", "message": other.to_string()}),
            };
            if pretty {
                writeln!(out, "line {line}: error: {e}\n")
            } else {
                writeln!(out, "{}", json!({"line": line, "error": error}))
            }
        }
    }
}

fn write_pretty(out: &mut dyn Write, d: &Decision) -> io::Result<()> {
    let mark = match d.outcome {
        Outcome::Execute => "EXECUTE ",
        Outcome::Escalate => "ESCALATE",
        Outcome::Reject => "REJECT  ",
    };
    writeln!(
        out,
        "{mark}  trace {}  decision {}  {} µs",
        d.trace_id, d.decision_id, d.duration_us
    )?;
    for r in &d.reasons {
        writeln!(
            out,
            "  {:<8} {:<6} {:<30} {}",
            r.effect.as_str(),
            r.engine.as_str(),
            r.policy,
            r.message
        )?;
    }
    for o in &d.obligations {
        writeln!(out, "  obligation {} ({} {})", o.id, o.engine, o.policy)?;
    }
    writeln!(
        out,
        "  bundle {} {} {}\n",
        d.bundle.name, d.bundle.revision, d.bundle.digest
    )
}
