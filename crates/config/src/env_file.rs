//! The `snikket.conf` format: what Docker's `env_file` and a POSIX shell both accept for simple assignments.

use std::path::Path;

/// Reads `path` and returns its assignments in file order (a later duplicate wins when they are put into a map).
pub(crate) fn read(path: &Path) -> Result<Vec<Assignment>, Vec<String>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![format!("cannot read env file {}: {e}", path.display())])?;
    let text = String::from_utf8(bytes)
        .map_err(|_| vec![format!("env file {} is not valid UTF-8", path.display())])?;
    parse(&text).map_err(|errors| {
        errors
            .into_iter()
            .map(|(line, message)| format!("{}:{line}: {message}", path.display()))
            .collect()
    })
}

/// One `KEY=VALUE` assignment.
pub(crate) type Assignment = (String, String);

/// A bad line: its 1-based number and what is wrong with it.
pub(crate) type LineError = (usize, String);

/// Parses the text of an env file. Every bad line is reported.
pub(crate) fn parse(text: &str) -> Result<Vec<Assignment>, Vec<LineError>> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    // A UTF-8 byte-order mark is what some Windows editors put first; it is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, line) in text.split('\n').enumerate() {
        match parse_line(line.strip_suffix('\r').unwrap_or(line)) {
            Ok(Some(pair)) => pairs.push(pair),
            Ok(None) => {}
            Err(message) => errors.push((index + 1, message)),
        }
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(errors)
    }
}

fn parse_line(line: &str) -> Result<Option<Assignment>, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    };
    let Some((key, value)) = line.split_once('=') else {
        return Err(format!(
            "malformed line {:?}: expected KEY=VALUE",
            shorten(line)
        ));
    };
    let key = key.trim_end();
    if !is_valid_key(key) {
        return Err(format!(
            "malformed line {:?}: {key:?} is not a variable name (letters, digits and _, not starting with a digit)",
            shorten(line)
        ));
    }
    let value = parse_value(value.trim_start()).map_err(|reason| format!("{key}: {reason}"))?;
    Ok(Some((key.to_owned(), value)))
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(raw: &str) -> Result<String, String> {
    let Some(quote) = raw.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        // Unquoted: like Docker Compose, ` #` starts a comment; a `#` inside a word (a URL fragment) does not.
        let end = raw
            .char_indices()
            .find(|&(i, c)| c == '#' && raw[..i].ends_with([' ', '\t']))
            .map_or(raw.len(), |(i, _)| i);
        return Ok(raw[..end].trim_end().to_owned());
    };
    let body = &raw[1..];
    let mut value = String::new();
    let mut chars = body.char_indices();
    let rest = loop {
        let Some((i, c)) = chars.next() else {
            return Err(format!("value has no closing {quote} quote"));
        };
        if c == quote {
            break &body[i + 1..];
        }
        // Inside double quotes a backslash escapes a quote or a backslash, as in a shell; single quotes are literal.
        if quote == '"' && c == '\\' {
            match chars.clone().next() {
                Some((_, next @ ('"' | '\\'))) => {
                    value.push(next);
                    chars.next();
                }
                _ => value.push('\\'),
            }
        } else {
            value.push(c);
        }
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err(format!(
            "unexpected text {:?} after the closing quote",
            shorten(rest)
        ))
    }
}

/// Keeps error lines readable when someone points the server at a binary or very long file.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text).expect("parses")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn plain_assignments_comments_and_blank_lines() {
        let text = "# Snikket\n\nSNIKKET_DOMAIN=chat.example.com\n   # indented comment\nSNIKKET_ADMIN_EMAIL=a@b.c\n";
        assert_eq!(
            ok(text),
            vec![
                pair("SNIKKET_DOMAIN", "chat.example.com"),
                pair("SNIKKET_ADMIN_EMAIL", "a@b.c")
            ]
        );
    }

    #[test]
    fn quotes_export_and_crlf() {
        let text = "export A=\"quoted value\"\r\nB='single # not a comment'\nC = spaced \nD=\"esc \\\" \\\\ \\n\"\nE=''\n";
        assert_eq!(
            ok(text),
            vec![
                pair("A", "quoted value"),
                pair("B", "single # not a comment"),
                pair("C", "spaced"),
                pair("D", "esc \" \\ \\n"),
                pair("E", ""),
            ]
        );
    }

    #[test]
    fn inline_comments() {
        let text = "A=1 # one\nB=https://x/#frag\nC=\"2\" # two\nD=#notacomment\n";
        assert_eq!(
            ok(text),
            vec![
                pair("A", "1"),
                pair("B", "https://x/#frag"),
                pair("C", "2"),
                pair("D", "#notacomment"),
            ]
        );
    }

    #[test]
    fn empty_value_and_equals_in_value() {
        assert_eq!(ok("A=\nB=x=y\n"), vec![pair("A", ""), pair("B", "x=y")]);
    }

    #[test]
    fn export_as_a_variable_name_is_not_a_prefix() {
        assert_eq!(ok("exported=1\n"), vec![pair("exported", "1")]);
    }

    #[test]
    fn malformed_lines_are_reported_with_line_numbers() {
        let errors = parse("A=1\nnot an assignment\nB=\"open\n9X=1\nC='a' junk\n").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5], "{errors:?}");
        assert!(errors[1].1.contains("closing"), "{errors:?}");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(ok("\u{feff}A=1"), vec![pair("A", "1")]);
    }
}
