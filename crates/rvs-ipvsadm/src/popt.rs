//! The slice of popt's argv grammar that ipvsadm's option table uses.
//!
//! Written by hand because no crate reproduces popt's exact quirks, and ipvsadm's users depend
//! on them: short options bundle (`-Ln`), a short option's argument may be attached (`-w3`) or
//! follow; a required argument takes the next word even if it starts with `-` (`-t -u` makes
//! `-u` the address); an optional argument (`-p`) takes the next word only if it does not start
//! with `-`; long options take `--name=value` or `--name value`; `--` ends options; other words
//! are collected as arguments, wherever they appear. One `=` after a short option is part of
//! the option (`-p=300` is `-p 300`; `-n=1` is an argument to a flag, refused). An argument's
//! `!#:+` is replaced by the next word that is not an option (which is then used up), and a
//! backslash takes the character after it as it is (popt's `expandNextArg`).

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// No argument.
    None,
    /// A required argument.
    Required,
    /// An optional argument.
    Optional,
}

/// One row of an option table.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec<T> {
    /// The long name, without `--`.
    pub long: &'static str,
    /// The short letter, if any.
    pub short: Option<char>,
    /// Its argument.
    pub arg: ArgKind,
    /// What the caller gets back.
    pub tag: T,
}

/// A popt error: the offending word as popt shows it, and popt's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoptError {
    /// The option as written (`--bogus`, `-LQ`, `--numeric=3`).
    pub bad_option: String,
    /// `unknown option`, `missing argument`, `option does not take an argument`.
    pub message: &'static str,
}

/// A tokenizer over argv (without argv\[0\]).
pub struct Popt<'a, T> {
    table: &'a [OptSpec<T>],
    args: &'a [String],
    next: usize,
    bundle: Option<(String, usize)>,
    rest_are_args: bool,
    leftovers: Vec<String>,
    /// Words used up by `!#:+`.
    taken: Vec<bool>,
}

impl<'a, T: Copy> Popt<'a, T> {
    /// A tokenizer over `args` with `table`.
    #[must_use]
    pub fn new(table: &'a [OptSpec<T>], args: &'a [String]) -> Self {
        Self {
            table,
            args,
            next: 0,
            bundle: None,
            rest_are_args: false,
            leftovers: Vec::new(),
            taken: vec![false; args.len()],
        }
    }

    /// The last word read from argv (what popt's `poptBadOption` shows).
    #[must_use]
    pub fn last_word(&self) -> &str {
        self.next
            .checked_sub(1)
            .and_then(|i| self.args.get(i))
            .map_or("", String::as_str)
    }

    /// The next option and its argument, `None` at the end, or popt's error.
    ///
    /// # Errors
    /// An unknown option, a missing argument, or an argument to an option that takes none.
    pub fn next_opt(&mut self) -> Option<Result<(T, Option<String>), PoptError>> {
        if let Some((word, pos)) = self.bundle.take() {
            return Some(self.short(&word, pos));
        }
        loop {
            let word = self.args.get(self.next)?.clone();
            self.next += 1;
            if self.taken[self.next - 1] {
                continue;
            }
            if self.rest_are_args {
                self.leftovers.push(word);
                continue;
            }
            if word == "--" {
                self.rest_are_args = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                return Some(self.long(&word, long));
            }
            if word.len() > 1 && word.starts_with('-') {
                return Some(self.short(&word, 1));
            }
            self.leftovers.push(word);
        }
    }

    /// Words that were not options, in order (after `next_opt` returned `None`).
    pub fn leftovers(&mut self) -> std::vec::Drain<'_, String> {
        self.leftovers.drain(..)
    }

    fn bad(word: &str, message: &'static str) -> PoptError {
        PoptError {
            bad_option: word.to_owned(),
            message,
        }
    }

    fn long(&mut self, word: &str, long: &str) -> Result<(T, Option<String>), PoptError> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (long, None),
        };
        let spec = self
            .table
            .iter()
            .find(|s| s.long == name)
            .ok_or_else(|| Self::bad(word, "unknown option"))?;
        let arg = match (spec.arg, inline) {
            (ArgKind::None, Some(_)) => {
                return Err(Self::bad(word, "option does not take an argument"))
            }
            (ArgKind::None, None) => None,
            (_, Some(v)) => Some(self.expand(&v)),
            (ArgKind::Required, None) => Some(self.take_next(word)?),
            (ArgKind::Optional, None) => self.take_optional(),
        };
        Ok((spec.tag, arg))
    }

    /// popt's `expandNextArg`: `!#:+` becomes the next word that does not start with `-`
    /// (used up, so it is not an argument of its own any more; left as it is when there is
    /// none), and `\\x` becomes `x`.
    fn expand(&mut self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '\\' => {
                    if let Some(n) = rest.chars().next() {
                        out.push(n);
                        rest = &rest[n.len_utf8()..];
                    }
                }
                '!' if rest.starts_with("#:+") => {
                    let next = (self.next..self.args.len())
                        .find(|&i| !self.taken[i] && !self.args[i].starts_with('-'));
                    match next {
                        Some(i) => {
                            self.taken[i] = true;
                            out.push_str(&self.args[i]);
                            rest = &rest[3..];
                        }
                        None => out.push('!'),
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    fn short(&mut self, word: &str, pos: usize) -> Result<(T, Option<String>), PoptError> {
        let c = word[pos..].chars().next().unwrap_or('-');
        let spec = self
            .table
            .iter()
            .find(|s| s.short == Some(c))
            .ok_or_else(|| Self::bad(word, "unknown option"))?;
        let after = pos + c.len_utf8();
        let rest = &word[after..];
        let arg = match spec.arg {
            ArgKind::None if rest.starts_with('=') => {
                return Err(Self::bad(word, "option does not take an argument"))
            }
            ArgKind::None => {
                if !rest.is_empty() {
                    self.bundle = Some((word.to_owned(), after));
                }
                None
            }
            _ if !rest.is_empty() => Some(self.expand(rest.strip_prefix('=').unwrap_or(rest))),
            ArgKind::Required => Some(self.take_next(word)?),
            ArgKind::Optional => self.take_optional(),
        };
        Ok((spec.tag, arg))
    }

    fn take_next(&mut self, word: &str) -> Result<String, PoptError> {
        let v = self
            .args
            .get(self.next)
            .ok_or_else(|| Self::bad(word, "missing argument"))?
            .clone();
        self.next += 1;
        Ok(self.expand(&v))
    }

    fn take_optional(&mut self) -> Option<String> {
        let v = self
            .args
            .get(self.next)
            .filter(|v| !v.starts_with('-'))?
            .clone();
        self.next += 1;
        Some(self.expand(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[OptSpec<char>] = &[
        OptSpec {
            long: "list",
            short: Some('L'),
            arg: ArgKind::None,
            tag: 'L',
        },
        OptSpec {
            long: "numeric",
            short: Some('n'),
            arg: ArgKind::None,
            tag: 'n',
        },
        OptSpec {
            long: "weight",
            short: Some('w'),
            arg: ArgKind::Required,
            tag: 'w',
        },
        OptSpec {
            long: "persistent",
            short: Some('p'),
            arg: ArgKind::Optional,
            tag: 'p',
        },
    ];

    fn all(words: &[&str]) -> Vec<Result<(char, Option<String>), PoptError>> {
        let args: Vec<String> = words.iter().map(|s| (*s).to_owned()).collect();
        let mut p = Popt::new(T, &args);
        std::iter::from_fn(|| p.next_opt()).collect()
    }

    #[test]
    fn bundles_and_attached_arguments() {
        assert_eq!(all(&["-Ln"]), vec![Ok(('L', None)), Ok(('n', None))]);
        assert_eq!(
            all(&["-Lw5"]),
            vec![Ok(('L', None)), Ok(('w', Some("5".into())))]
        );
        assert_eq!(all(&["-w", "-1"]), vec![Ok(('w', Some("-1".into())))]);
    }

    #[test]
    fn optional_arguments_skip_words_that_look_like_options() {
        assert_eq!(all(&["-p", "-n"]), vec![Ok(('p', None)), Ok(('n', None))]);
        assert_eq!(all(&["-p", "300"]), vec![Ok(('p', Some("300".into())))]);
        assert_eq!(all(&["--persistent=5"]), vec![Ok(('p', Some("5".into())))]);
    }

    #[test]
    fn an_equals_sign_after_a_short_option_and_next_word_expansion() {
        assert_eq!(all(&["-w=5"]), vec![Ok(('w', Some("5".into())))]);
        assert_eq!(
            all(&["-w", "!#:+", "-n", "7"]),
            vec![Ok(('w', Some("7".into()))), Ok(('n', None))]
        );
        assert_eq!(all(&["-w", "a\\!b"]), vec![Ok(('w', Some("a!b".into())))]);
        assert_eq!(all(&["-w", "!#:+"]), vec![Ok(('w', Some("!#:+".into())))]);
    }

    #[test]
    fn errors_name_the_word_as_written() {
        let e = |b: &str, m| {
            Err(PoptError {
                bad_option: b.into(),
                message: m,
            })
        };
        assert_eq!(
            all(&["-LQ"]),
            vec![Ok(('L', None)), e("-LQ", "unknown option")]
        );
        assert_eq!(
            all(&["--numeric=3"]),
            vec![e("--numeric=3", "option does not take an argument")]
        );
        assert_eq!(all(&["-w"]), vec![e("-w", "missing argument")]);
        assert_eq!(
            all(&["-Ln=1"]),
            vec![
                Ok(('L', None)),
                e("-Ln=1", "option does not take an argument")
            ]
        );
    }
}
