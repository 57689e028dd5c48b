//! `-R`: rules in `-S` format from stdin, applied all or none.
//!
//! Lines are split the way ipvsadm's `config_stream_read` splits them: on spaces, tabs and
//! carriage returns, the word `ipvsadm` dropped wherever it appears, blank lines skipped, and
//! no comments (a `#` is a word like any other). Unlike ipvsadm, which applies line by line and
//! stops at the first bad option with the earlier lines applied, rvs checks every line first
//! and applies them as one batch: either all of them take effect or none does, and the line at
//! fault is named.

use crate::backend::{exit_outcome, Backend, BackendError, Outcome};
use crate::messages::kernel_message;
use crate::opts::Cmd;
use crate::parse::{self, Exit};
use crate::resolve::Resolver;
use crate::translate::to_command;
use rvs_core::{Command, TableError};
use rvs_proto::ErrorKind;
use std::io::BufRead;

/// The words of each line, with their 1-based line numbers; lines with no words are left out.
#[must_use]
pub fn split_lines(input: &str) -> Vec<(usize, Vec<String>)> {
    input
        .split('\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let words: Vec<String> = line
                .split([' ', '\t', '\r'])
                .filter(|w| !w.is_empty() && *w != "ipvsadm")
                .map(str::to_owned)
                .collect();
            (!words.is_empty()).then_some((i + 1, words))
        })
        .collect()
}

fn at_line(mut o: Outcome, n: usize, line: &[String]) -> Outcome {
    o.stderr.push_str(&format!(
        "restore: line {n} ({}): nothing was applied\n",
        line.join(" ")
    ));
    o
}

/// Reads stdin, checks every line, and applies them as one batch.
pub fn restore(
    program: &str,
    stdin: &mut dyn BufRead,
    backend: &mut dyn Backend,
    r: &dyn Resolver,
) -> Outcome {
    let mut input = String::new();
    if let Err(e) = stdin.read_to_string(&mut input) {
        return Outcome {
            stderr: format!("cannot read the rules from stdin: {e}\n"),
            code: 2,
            ..Outcome::default()
        };
    }
    let mut commands = Vec::new();
    let mut sources = Vec::new();
    for (n, words) in split_lines(&input) {
        let inv = match parse::parse(&words, r) {
            Ok(inv) => inv,
            Err(exit) => return at_line(exit_outcome(exit, program), n, &words),
        };
        if inv.cmd == Cmd::Restore {
            return at_line(exit_outcome(Exit::TryHelp, program), n, &words);
        }
        match to_command(&inv) {
            Ok(Some(c)) => {
                commands.push(c);
                sources.push((n, words, inv.cmd));
            }
            Ok(None) => {
                let msg = "only -A -E -D -C -Z -a -e -d and --set can be restored";
                return at_line(
                    exit_outcome(Exit::Fail(msg.to_owned(), 2), program),
                    n,
                    &words,
                );
            }
            Err(sched) => {
                let msg = "Scheduler or persistence engine not found";
                let mut o = exit_outcome(Exit::Fail(msg.to_owned(), 255), program);
                o.stderr
                    .push_str(&format!("restore: no scheduler is named {sched:?}\n"));
                return at_line(o, n, &words);
            }
        }
    }
    if commands.is_empty() {
        return Outcome::default();
    }
    match backend.apply(Command::batch(commands)) {
        Ok(()) => Outcome::default(),
        Err(BackendError::Api(api)) => match api.kind {
            ErrorKind::Table {
                error: TableError::InBatch { index, source },
            } => {
                let (n, words, cmd) = &sources[index.min(sources.len() - 1)];
                let msg = kernel_message(*cmd, &source);
                at_line(
                    Outcome {
                        stderr: format!("{msg}\n"),
                        code: 255,
                        ..Outcome::default()
                    },
                    *n,
                    words,
                )
            }
            _ => Outcome {
                stderr: format!("{}\n", api.message),
                code: 255,
                ..Outcome::default()
            },
        },
        Err(BackendError::Unavailable(why)) => Outcome {
            stderr: format!("Can't initialize ipvs: {why}\n"),
            code: 2,
            ..Outcome::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_config_stream() {
        let got = split_lines("ipvsadm -A -t 1.2.3.4:80\r\n\n  \t\n-a\t-t x ipvsadm -r y\n# c\n");
        assert_eq!(
            got[0],
            (1, vec!["-A".into(), "-t".into(), "1.2.3.4:80".into()])
        );
        assert_eq!(got[1].0, 4);
        assert_eq!(got[1].1, vec!["-a", "-t", "x", "-r", "y"]);
        assert_eq!(got[2], (5, vec!["#".into(), "c".into()]));
    }
}
