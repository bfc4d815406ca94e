//! The `garim` command line: `serve`, `scan`, `mask` and `eval` (SPEC.md).
//!
//! This file only parses arguments and wires the library together; `anyhow` is used here and
//! nowhere else. Exit status: 0 on success, 2 on bad usage or bad config (clap's own usage
//! errors are 2 as well), 1 on any other failure.

use anyhow::Context;
use clap::{Parser, Subcommand};
use garim::config::Config;
use garim::pipeline::{Gateway, StartError};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "garim",
    version,
    about = "Privacy gateway for LLM traffic: masks personal data before it leaves, restores it in the answer."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (embedded default when no --config is given).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// ADDR:PORT to listen on (port 0 picks a free one; the `listening on` line tells which).
        #[arg(long)]
        listen: Option<String>,
        /// PREFIX=URL: send everything under PREFIX/ to URL (repeatable).
        #[arg(long = "route")]
        routes: Vec<String>,
        /// Audit log file (JSON lines).
        #[arg(long)]
        audit: Option<String>,
    },
    /// Print the findings in a text, line by line.
    Scan {
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object per input line, with code-point offsets.
        #[arg(long)]
        json: bool,
        /// Input file, or `-` / nothing for standard input.
        input: Option<PathBuf>,
    },
    /// Print the text with every finding replaced by its placeholder, line by line.
    Mask {
        #[arg(long)]
        config: Option<PathBuf>,
        input: Option<PathBuf>,
    },
    /// Score the configured detectors on span corpora (JSON Lines, SPEC.md).
    Eval {
        #[arg(long)]
        config: Option<PathBuf>,
        /// strict: same start, end and label; overlap: any overlap with the same label.
        #[arg(long = "match", value_enum, default_value = "strict")]
        match_mode: MatchArg,
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        corpora: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MatchArg {
    Strict,
    Overlap,
}

/// Failure classes that decide the exit status.
enum Failure {
    Usage(anyhow::Error),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.into())
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, Failure> {
    Config::load(path.map(PathBuf::as_path)).map_err(|e| Failure::Usage(e.into()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            config,
            listen,
            routes,
            audit,
        } => serve(config, listen, routes, audit),
        Cmd::Scan {
            config,
            json,
            input,
        } => scan(config, json, input),
        Cmd::Mask { config, input } => mask(config, input),
        Cmd::Eval {
            config,
            match_mode,
            json,
            corpora,
        } => eval(config, match_mode, json, corpora),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("garim: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("garim: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    routes: Vec<String>,
    audit: Option<String>,
) -> Result<(), Failure> {
    let mut cfg = load_config(config.as_ref())?;
    cfg.apply_overrides(listen.as_deref(), &routes, audit.as_deref())
        .map_err(|e| Failure::Usage(e.into()))?;
    garim::telemetry::init_tracing(&cfg.log_level);
    let cfg = Arc::new(cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let gateway = Gateway::from_config(cfg.clone()).map_err(|e| match e {
            StartError::Config(m) => Failure::Usage(anyhow::anyhow!(m)),
            StartError::Io(m) => Failure::Other(anyhow::anyhow!(m)),
        })?;
        let tls = match &cfg.server.tls {
            Some(t) => Some(
                garim::server::tls_acceptor(&t.cert_file, &t.key_file)
                    .map_err(|e| Failure::Usage(e.into()))?,
            ),
            None => None,
        };
        // Hot reload of the rules (file changes and SIGHUP); installed before the readiness
        // line, so a SIGHUP after it never terminates the process.
        garim::detect::reload::spawn(
            gateway.engine.clone(),
            cfg.detect.clone(),
            gateway.metrics.clone(),
            garim::detect::reload::POLL_INTERVAL,
        )
        .context("installing the SIGHUP handler")?;
        let listener = garim::server::bind(cfg.server.listen).await?;
        let addr = listener.local_addr().context("reading the bound address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}")?;
            out.flush()?;
        }
        tracing::info!(%addr, tls = tls.is_some(), routes = cfg.routes.len(), "garim ready");
        let server = garim::server::Server::new(Arc::new(gateway));
        server.serve(listener, tls, shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn open_input(input: Option<&PathBuf>) -> Result<Box<dyn BufRead>, Failure> {
    match input {
        None => Ok(Box::new(std::io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(std::io::stdin().lock())),
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            Ok(Box::new(std::io::BufReader::new(f)))
        }
    }
}

/// The engine of the configuration, and how many lines `scan` and `mask` detect at once.
fn engine(config: Option<&PathBuf>) -> Result<(garim::detect::Engine, usize), Failure> {
    let cfg = load_config(config)?;
    // The same configuration as `serve`: with [detect.ner] enabled, the models are loaded
    // here too (a missing ONNX Runtime library exits 2 with what to do).
    let ner =
        garim::detect::ner::route::load(&cfg.detect.ner).map_err(|e| Failure::Usage(e.into()))?;
    let engine =
        garim::detect::build_engine_with(&cfg.detect, ner).map_err(|e| Failure::Usage(e.into()))?;
    // With NER a call mostly waits for the model pools, which batch across concurrent calls:
    // enough callers to fill a batch on every worker of both models (1.7-1.9x on 300 KB of
    // mixed text). The rules alone stay on one thread: spread over threads they were 2x
    // slower (each search then takes its lazy-DFA cache from a shared pool).
    let threads = if engine.has_ner() {
        (2 * cfg.detect.ner.workers * cfg.detect.ner.max_batch).clamp(2, 64)
    } else {
        1
    };
    Ok((engine, threads))
}

/// Lines read and detected at once by `scan` and `mask` (their output keeps input order).
const LINE_CHUNK: usize = 1024;

/// Up to [`LINE_CHUNK`] lines of `input` (none at the end), and the read error that stopped
/// it early, if one did: the lines before it are still processed and printed.
fn next_lines(input: &mut dyn BufRead) -> (Vec<String>, Option<std::io::Error>) {
    let mut lines = Vec::new();
    for line in input.lines().take(LINE_CHUNK) {
        match line {
            Ok(l) => lines.push(l),
            Err(e) => return (lines, Some(e)),
        }
    }
    (lines, None)
}

/// The findings of every line, in order, detected by `threads` threads at once.
fn detect_lines(
    engine: &garim::detect::Engine,
    lines: &[String],
    threads: usize,
) -> Vec<Result<Vec<garim::detect::Finding>, garim::detect::DetectError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    if threads <= 1 || lines.len() <= 1 {
        return lines.iter().map(|l| engine.detect(l)).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<OnceLock<_>> = lines.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.min(lines.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(line) = lines.get(i) else { break };
                let _ = results[i].set(engine.detect(line));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("every line was detected"))
        .collect()
}

fn scan(config: Option<PathBuf>, json: bool, input: Option<PathBuf>) -> Result<(), Failure> {
    let (engine, threads) = engine(config.as_ref())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut input = open_input(input.as_ref())?;
    let done = for_each_line(&mut *input, &engine, threads, |line, findings| {
        scan_line(&mut out, json, line, &findings)
    });
    out.flush()?;
    done
}

/// Calls `f` with every line of `input` and its findings, in input order; the lines are
/// detected [`LINE_CHUNK`] at a time by `threads` threads. A read error ends it after the
/// lines before it.
fn for_each_line(
    input: &mut dyn BufRead,
    engine: &garim::detect::Engine,
    threads: usize,
    mut f: impl FnMut(&str, Vec<garim::detect::Finding>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    loop {
        let (lines, read_error) = next_lines(input);
        if lines.is_empty() && read_error.is_none() {
            return Ok(());
        }
        for (line, findings) in lines.iter().zip(detect_lines(engine, &lines, threads)) {
            f(line, findings?)?;
        }
        if let Some(e) = read_error {
            return Err(anyhow::Error::from(e).context("reading input").into());
        }
    }
}

fn scan_line(
    out: &mut impl Write,
    json: bool,
    line: &str,
    findings: &[garim::detect::Finding],
) -> Result<(), Failure> {
    if json {
        let offsets: Vec<usize> = findings.iter().flat_map(|f| [f.start, f.end]).collect();
        let chars = garim::detect::byte_to_char_offsets(line, &offsets);
        let spans: Vec<serde_json::Value> = findings
            .iter()
            .zip(chars.chunks(2))
            .map(|(f, c)| {
                serde_json::json!({
                    "start": c[0], "end": c[1], "label": f.label.as_str(),
                    "subtype": f.subtype, "detector": f.detector, "score": f.score,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({ "spans": spans }))?;
    } else {
        for f in findings {
            // The finding's own text is the point of `scan`: the user ran it on their data.
            writeln!(
                out,
                "{}-{}\t{}\t{}\t{:.2}\t{}",
                f.start,
                f.end,
                f.label,
                f.subtype.as_deref().unwrap_or("-"),
                f.score,
                &line[f.start..f.end]
            )?;
        }
    }
    Ok(())
}

fn mask(config: Option<PathBuf>, input: Option<PathBuf>) -> Result<(), Failure> {
    let (engine, threads) = engine(config.as_ref())?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let vault = garim::mask::MemoryVault::new(
        std::time::Duration::from_secs(86_400),
        usize::MAX,
        usize::MAX,
    );
    let conv = garim::mask::ConversationId("cli".into());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut input = open_input(input.as_ref())?;
    // Placeholders are assigned in input order (their numbers depend on it).
    let done = for_each_line(&mut *input, &engine, threads, |line, findings| {
        let pairs: Vec<_> = findings
            .iter()
            .map(|f| (f.label, &line[f.start..f.end]))
            .collect();
        let assigned = rt.block_on(garim::mask::Vault::assign(&vault, &conv, &pairs))?;
        writeln!(
            out,
            "{}",
            garim::mask::apply(line, &findings, &assigned.placeholders)
        )?;
        Ok(())
    });
    out.flush()?;
    done?;
    Ok(())
}

fn eval(
    config: Option<PathBuf>,
    mode: MatchArg,
    json: bool,
    corpora: Vec<PathBuf>,
) -> Result<(), Failure> {
    use garim::detect::eval::{evaluate, MatchMode};
    let (engine, _) = engine(config.as_ref())?;
    let mode = match mode {
        MatchArg::Strict => MatchMode::Strict,
        MatchArg::Overlap => MatchMode::Overlap,
    };
    let paths: Vec<&std::path::Path> = corpora.iter().map(PathBuf::as_path).collect();
    let report = evaluate(&engine, &paths, mode)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "{} docs, {} chars, {:.3} s detection",
            report.docs, report.chars, report.seconds
        )?;
        writeln!(
            out,
            "{:<16} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
            "label", "tp", "fp", "fn", "precision", "recall", "f1"
        )?;
        for (label, s) in report
            .labels
            .iter()
            .map(|(l, s)| (l.as_str(), s))
            .chain([("micro", &report.micro)])
        {
            writeln!(
                out,
                "{label:<16} {:>6} {:>6} {:>6} {:>9.4} {:>9.4} {:>9.4}",
                s.tp, s.fp, s.fn_, s.precision, s.recall, s.f1
            )?;
        }
    }
    Ok(())
}
