//! The few JavaScript semantics the reference pipeline relied on without
//! saying so, reproduced exactly so our outputs match its outputs:
//! truthiness (`a || b`, `!!x`), `String.prototype.trim`, and how
//! `JSON.stringify(x, null, 2)` writes numbers.

use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::Value;
use std::io;

/// JavaScript truthiness of a JSON value: `null`, `false`, `0`, `""` are
/// falsy; every array and object (even empty) is truthy.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Truthiness of an optional field, where `None` is JavaScript's `undefined`.
pub fn truthy_opt(v: Option<&Value>) -> bool {
    v.is_some_and(truthy)
}

/// JavaScript's `a || b` over optional fields (`None` is `undefined`): `a`
/// when truthy, otherwise `b` whatever it is.
pub fn or<'a>(a: Option<&'a Value>, b: Option<&'a Value>) -> Option<&'a Value> {
    if truthy_opt(a) {
        a
    } else {
        b
    }
}

/// Whether `c` is whitespace for JavaScript's `trim()`: Unicode White_Space
/// plus U+FEFF, minus U+0085 (NEL), which ECMAScript does not count.
fn is_js_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// JavaScript's `String.prototype.trim`.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// Largest integer a JavaScript number holds exactly (2^53).
const MAX_SAFE: u64 = 1 << 53;

/// Append `v` formatted as JavaScript's `Number.prototype.toString` does
/// (what `JSON.stringify` writes): integers without `.0`, shortest
/// round-trip digits, exponent form (`1e+21`, `1e-7`) outside
/// [1e-6, 1e21). Non-finite values become `null`, as in JSON.stringify.
pub fn write_number(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if v == 0.0 {
        // Also -0, which JavaScript prints as "0".
        out.push(b'0');
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, the same
    // digits ECMAScript's Number::toString chooses; only the layout differs.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(|b| b.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    let n = exp + 1; // value = 0.d1d2… × 10^n
    if k <= n && n <= 21 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.extend_from_slice(&digits[..n as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-n) as usize));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = n - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        out.extend_from_slice(e.unsigned_abs().to_string().as_bytes());
    }
}

/// A serde_json formatter that writes exactly what JavaScript's
/// `JSON.stringify(x, null, 2)` writes: 2-space indentation (serde_json's
/// pretty layout and string escaping already agree with V8) and numbers the
/// JavaScript way.
pub struct JsFormatter {
    pretty: PrettyFormatter<'static>,
}

impl JsFormatter {
    /// A formatter with JSON.stringify's 2-space indentation.
    pub fn new() -> Self {
        JsFormatter {
            pretty: PrettyFormatter::with_indent(b"  "),
        }
    }
}

impl Default for JsFormatter {
    fn default() -> Self {
        Self::new()
    }
}

/// Write a JavaScript number to a writer.
fn write_js<W: ?Sized + io::Write>(w: &mut W, v: f64) -> io::Result<()> {
    let mut buf = Vec::with_capacity(24);
    write_number(&mut buf, v);
    w.write_all(&buf)
}

impl Formatter for JsFormatter {
    fn write_i64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i64) -> io::Result<()> {
        if v.unsigned_abs() <= MAX_SAFE {
            w.write_all(v.to_string().as_bytes())
        } else {
            // JavaScript would have rounded it to the nearest double.
            write_js(w, v as f64)
        }
    }
    fn write_u64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u64) -> io::Result<()> {
        if v <= MAX_SAFE {
            w.write_all(v.to_string().as_bytes())
        } else {
            write_js(w, v as f64)
        }
    }
    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i128) -> io::Result<()> {
        write_js(w, v as f64)
    }
    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u128) -> io::Result<()> {
        write_js(w, v as f64)
    }
    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        write_js(w, f64::from(v))
    }
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        write_js(w, v)
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

/// Serialize `value` as `JSON.stringify(value, null, 2)` would.
pub fn stringify<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2048);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsFormatter::new());
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_like_javascript() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(2.4), "2.4");
        assert_eq!(num(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e20), "100000000000000000000");
        assert_eq!(num(123456789012.5), "123456789012.5");
        assert_eq!(num(1e-6), "0.000001");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(-1.5e-7), "-1.5e-7");
        assert_eq!(num(1.2345e25), "1.2345e+25");
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn stringify_matches_v8_layout() {
        let v =
            json!({"a": [], "b": {}, "c": [1.0, 2.5, "x\u{1}\n"], "d": 12345678901234567890u64});
        let s = String::from_utf8(stringify(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    2.5,\n    \"x\\u0001\\n\"\n  ],\n  \"d\": 12345678901234567000\n}"
        );
    }

    #[test]
    fn truthiness_and_trim() {
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!("")));
        assert!(truthy(&json!([])));
        assert_eq!(or(Some(&json!(0)), None), None);
        assert_eq!(trim("\u{feff} a \u{a0}"), "a");
        assert_eq!(trim("\u{85}a"), "\u{85}a");
    }
}
