//! `agentriage anomaly train` and `agentriage anomaly score`: train an
//! Isolation Forest on CSV or JSON Lines events, and score event streams
//! against a model, keeping those at or above a threshold.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use agentriage::anomaly::{Contamination, IsolationForest, MaxFeatures, MaxSamples, score_jsonl};
use clap::{Args, Subcommand, ValueEnum};
use ndarray::Array2;
use serde_json::{Map, Value, json};

/// Exit codes of the anomaly commands (as `eval`'s).
mod exit {
    pub const OK: u8 = 0;
    pub const INVALID_INPUT: u8 = 1;
    pub const MODEL: u8 = 3;
    pub const IO: u8 = 4;
}

/// Train or apply an anomaly model (Isolation Forest).
#[derive(Subcommand)]
pub enum AnomalyCommand {
    /// Train a model on events and write it as JSON.
    ///
    /// CSV input has a header row naming the features and one number per
    /// cell; JSON Lines input has one object per line, whose numeric fields
    /// are the features (those of the first line, unless `--features`).
    Train(TrainArgs),
    /// Score events against a model; print one JSON object per event.
    ///
    /// Each output line is `{"line":N,"score":S,"event":{…}}`, the score in
    /// (0, 1], higher is more anomalous. With `--threshold` only events
    /// scoring at or above it are printed. An event that cannot be scored
    /// prints `{"line":N,"error":{…}}` and the stream goes on.
    Score(ScoreArgs),
}

/// Input formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Options of `anomaly train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Events: a `.csv` or `.jsonl` file, or `-` for JSON Lines on standard input.
    #[arg(long, short)]
    input: String,
    /// Where to write the model (JSON).
    #[arg(long, short)]
    out: PathBuf,
    /// Input format; by default from the file extension.
    #[arg(long)]
    format: Option<Format>,
    /// Comma-separated feature names to train on (default: every column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Number of trees.
    #[arg(long, default_value_t = 100)]
    n_estimators: usize,
    /// Samples per tree: `auto` (min(256, n)), a count, or a fraction in (0, 1].
    #[arg(long, default_value = "auto")]
    max_samples: String,
    /// Expected share of outliers: `auto` or a fraction in (0, 0.5].
    #[arg(long, default_value = "auto")]
    contamination: String,
    /// Features per tree: a count, or a fraction in (0, 1].
    #[arg(long, default_value = "1.0")]
    max_features: String,
    /// Random seed: the same seed and data give the same model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Options of `anomaly score`.
#[derive(Args)]
pub struct ScoreArgs {
    /// The model (JSON), from `anomaly train` or `agentriage.anomaly`.
    #[arg(long, short)]
    model: PathBuf,
    /// Events: a `.csv` or `.jsonl` file, or `-` for JSON Lines on standard input.
    #[arg(long, short, default_value = "-")]
    input: String,
    /// Input format; by default from the file extension.
    #[arg(long)]
    format: Option<Format>,
    /// Print only events whose score is at least this.
    #[arg(long)]
    threshold: Option<f64>,
}

/// Runs an anomaly command; returns the exit code.
pub fn run(command: AnomalyCommand) -> u8 {
    let result = match command {
        AnomalyCommand::Train(a) => train(&a),
        AnomalyCommand::Score(a) => score(&a),
    };
    match result {
        Ok(code) => code,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

/// An exit code and what went wrong.
struct Failure(u8, String);

fn format_of(input: &str, format: Option<Format>) -> Result<Format, Failure> {
    if let Some(f) = format {
        return Ok(f);
    }
    if input == "-" {
        return Ok(Format::Jsonl);
    }
    match Path::new(input).extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
        Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
            Ok(Format::Jsonl)
        }
        _ => Err(Failure(
            exit::INVALID_INPUT,
            format!(
                "cannot tell the format of `{input}` from its extension; pass --format csv or --format jsonl"
            ),
        )),
    }
}

fn open(input: &str) -> Result<Box<dyn BufRead>, Failure> {
    if input == "-" {
        return Ok(Box::new(BufReader::new(io::stdin().lock())));
    }
    std::fs::File::open(input)
        .map(|f| Box::new(BufReader::new(f)) as Box<dyn BufRead>)
        .map_err(|e| Failure(exit::IO, format!("cannot read `{input}`: {e}")))
}

fn bad(message: String) -> Failure {
    Failure(exit::INVALID_INPUT, message)
}

/// A table of events: feature names and rows.
struct Table {
    names: Vec<String>,
    rows: Vec<f64>,
    n: usize,
}

/// Reads a CSV table: a header row, then one number per cell. A row with
/// another number of cells, or a cell that is not a finite number, is an
/// error naming its line (and column).
fn read_csv(reader: impl Read, input: &str, select: Option<&[String]>) -> Result<Table, Failure> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| bad(format!("{input}: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(bad(format!("{input}:1: the header row names no columns")));
    }
    let columns: Vec<usize> = match select {
        None => (0..header.len()).collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                header.iter().position(|h| h == n).ok_or_else(|| {
                    bad(format!(
                        "{input}:1: no column `{n}`; the columns are {}",
                        header.join(", ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let names: Vec<String> = columns
        .iter()
        .filter_map(|&c| header.get(c).cloned())
        .collect();
    let mut rows = Vec::new();
    let mut n = 0;
    for record in csv.records() {
        let record = record.map_err(|e| bad(format!("{input}: {e}")))?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != header.len() {
            return Err(bad(format!(
                "{input}:{line}: the row has {} cells, the header has {}",
                record.len(),
                header.len()
            )));
        }
        for (&c, name) in columns.iter().zip(&names) {
            let cell = record.get(c).unwrap_or_default();
            let v: f64 = cell.parse().map_err(|_| {
                bad(format!(
                    "{input}:{line}: column `{name}`: `{cell}` is not a number"
                ))
            })?;
            if !v.is_finite() {
                return Err(bad(format!(
                    "{input}:{line}: column `{name}`: `{cell}` is not a finite number"
                )));
            }
            rows.push(v);
        }
        n += 1;
    }
    Ok(Table { names, rows, n })
}

/// Reads JSON Lines events: the features are `select`, or the numeric
/// fields of the first event.
fn read_jsonl(
    reader: impl BufRead,
    input: &str,
    select: Option<&[String]>,
) -> Result<Table, Failure> {
    let mut names: Option<Vec<String>> = select.map(<[String]>::to_vec);
    let mut rows = Vec::new();
    let mut n = 0;
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let text =
            line.map_err(|e| Failure(exit::IO, format!("{input}:{line_no}: cannot read: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let event: Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{input}:{line_no}: not a JSON object: {e}")))?;
        let names = names.get_or_insert_with(|| {
            event
                .iter()
                .filter(|(_, v)| v.is_number())
                .map(|(k, _)| k.clone())
                .collect()
        });
        if names.is_empty() {
            return Err(bad(format!(
                "{input}:{line_no}: the first event has no numeric field to train on"
            )));
        }
        for name in names.iter() {
            match event.get(name) {
                Some(Value::Number(v)) => rows.push(v.as_f64().unwrap_or(f64::NAN)),
                Some(other) => {
                    return Err(bad(format!(
                        "{input}:{line_no}: feature `{name}` must be a number, found {other}"
                    )));
                }
                None => return Err(bad(format!("{input}:{line_no}: missing feature `{name}`"))),
            }
        }
        n += 1;
    }
    Ok(Table {
        names: names.unwrap_or_default(),
        rows,
        n,
    })
}

fn parse_max_samples(s: &str) -> Result<MaxSamples, Failure> {
    if s == "auto" {
        return Ok(MaxSamples::Auto);
    }
    if let Ok(k) = s.parse::<usize>() {
        return Ok(MaxSamples::Count(k));
    }
    s.parse::<f64>().map(MaxSamples::Fraction).map_err(|_| {
        bad(format!(
            "--max-samples: expected `auto`, a count or a fraction, found `{s}`"
        ))
    })
}

fn parse_max_features(s: &str) -> Result<MaxFeatures, Failure> {
    if let Ok(k) = s.parse::<usize>() {
        return Ok(MaxFeatures::Count(k));
    }
    s.parse::<f64>().map(MaxFeatures::Fraction).map_err(|_| {
        bad(format!(
            "--max-features: expected a count or a fraction, found `{s}`"
        ))
    })
}

fn parse_contamination(s: &str) -> Result<Contamination, Failure> {
    if s == "auto" {
        return Ok(Contamination::Auto);
    }
    s.parse::<f64>().map(Contamination::Fraction).map_err(|_| {
        bad(format!(
            "--contamination: expected `auto` or a fraction, found `{s}`"
        ))
    })
}

/// Training sets at least this large show a progress bar (on a terminal).
const PROGRESS_MIN_ROWS: usize = 10_000;

fn train(a: &TrainArgs) -> Result<u8, Failure> {
    let format = format_of(&a.input, a.format)?;
    let reader = open(&a.input)?;
    let table = match format {
        Format::Csv => read_csv(reader, &a.input, a.features.as_deref())?,
        Format::Jsonl => read_jsonl(reader, &a.input, a.features.as_deref())?,
    };
    let x = Array2::from_shape_vec((table.n, table.names.len()), table.rows)
        .map_err(|e| bad(format!("{}: {e}", a.input)))?;
    let params = IsolationForest::params()
        .n_estimators(a.n_estimators)
        .max_samples(parse_max_samples(&a.max_samples)?)
        .max_features(parse_max_features(&a.max_features)?)
        .contamination(parse_contamination(&a.contamination)?)
        .seed(a.seed)
        .feature_names(table.names.clone());
    let bar = if table.n >= PROGRESS_MIN_ROWS {
        indicatif::ProgressBar::new(a.n_estimators as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("training {bar:40} {pos}/{len} trees {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let model = params
        .fit_with_progress(x.view(), &|done| bar.set_position(done as u64))
        .map_err(|e| bad(format!("cannot train: {e}")))?;
    bar.finish_and_clear();
    model
        .save(&a.out)
        .map_err(|e| Failure(exit::IO, e.to_string()))?;
    eprintln!(
        "trained {} on {} x {} ({}); offset {}; wrote {}",
        crate::count(model.n_estimators() as u64, "tree"),
        crate::count(table.n as u64, "event"),
        crate::count(table.names.len() as u64, "feature"),
        table.names.join(", "),
        model.offset(),
        a.out.display()
    );
    Ok(exit::OK)
}

fn score(a: &ScoreArgs) -> Result<u8, Failure> {
    let model = IsolationForest::load(&a.model)
        .map_err(|e| Failure(exit::MODEL, format!("cannot load the model: {e}")))?;
    if let Some(t) = a.threshold
        && !t.is_finite()
    {
        return Err(bad(format!(
            "--threshold must be a finite number, found {t}"
        )));
    }
    let format = format_of(&a.input, a.format)?;
    let reader = open(&a.input)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (mut scored, mut kept, mut errors) = (0u64, 0u64, 0u64);
    let threshold = a.threshold.unwrap_or(f64::NEG_INFINITY);
    let io_err = |e: io::Error| Failure(exit::IO, format!("cannot write: {e}"));
    match format {
        Format::Jsonl => {
            for result in score_jsonl(&model, reader) {
                match result {
                    Ok(e) => {
                        scored += 1;
                        if e.score >= threshold {
                            kept += 1;
                            writeln!(
                                out,
                                "{}",
                                json!({"line": e.line, "score": e.score, "event": e.event})
                            )
                            .map_err(io_err)?;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        writeln!(
                            out,
                            "{}",
                            json!({"line": e.line, "error": {"kind": e.kind.as_str(), "path": e.path, "message": e.message}})
                        )
                        .map_err(io_err)?;
                    }
                }
            }
        }
        Format::Csv => {
            let table = read_csv(reader, &a.input, Some(model.features()))?;
            let x = Array2::from_shape_vec((table.n, table.names.len()), table.rows)
                .map_err(|e| bad(format!("{}: {e}", a.input)))?;
            let scores = model
                .scores(x.view())
                .map_err(|e| bad(format!("{}: {e}", a.input)))?;
            for (i, (row, s)) in x.outer_iter().zip(scores.iter()).enumerate() {
                scored += 1;
                if *s >= threshold {
                    kept += 1;
                    let event: Map<String, Value> = table
                        .names
                        .iter()
                        .zip(row.iter())
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect();
                    // Line 1 is the header.
                    writeln!(
                        out,
                        "{}",
                        json!({"line": i + 2, "score": s, "event": event})
                    )
                    .map_err(io_err)?;
                }
            }
        }
    }
    out.flush().map_err(io_err)?;
    match a.threshold {
        Some(t) => {
            eprintln!(
                "scored {}; kept {kept} at or above {t}; {}",
                crate::count(scored, "event"),
                crate::count(errors, "error")
            )
        }
        None => eprintln!(
            "scored {}; {}",
            crate::count(scored, "event"),
            crate::count(errors, "error")
        ),
    }
    Ok(if errors > 0 {
        exit::INVALID_INPUT
    } else {
        exit::OK
    })
}
