//! One line of the daemon's JSON query log, read by borrowing from the line's bytes.
//!
//! Only the fields the report counts are read; every other field (`impact`, `duration_us`,
//! fields added later) is skipped without being stored. Strings borrow from the line
//! unless they hold escapes. Two generations of the format are read:
//!
//! - `areas` as names (`["Diagnostic Data"]`) or as objects (`[{"id": "diagnostic-data",
//!   "name": "Diagnostic Data"}]`);
//! - `decided_by`, when present: `{"kind": "area", "id", "name", "pattern", "action"}`,
//!   `{"kind": "rule" | "list", …}`, or a `group`/`cname` object wrapping one of those in
//!   `inner`; the CNAME chain name also comes as the top-level `cname`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::scan::Marks;

/// The fields of one query line that the report uses.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct LogLine<'a> {
    #[serde(borrow)]
    pub(crate) ts: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) client: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) qname: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) decision: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) areas: Vec<AreaItem<'a>>,
    #[serde(borrow, default, deserialize_with = "borrowed_strs")]
    pub(crate) patterns: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) rcode: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub(crate) cname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) decided_by: Option<DecidedBy<'a>>,
}

/// An entry of `areas`: a name (older lines) or an id with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AreaItem<'a> {
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) name: Cow<'a, str>,
}

/// What decided a line, flattened from the nested `decided_by` object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DecidedBy<'a> {
    /// `area`, `rule`, `list` or `catalog` (the innermost kind).
    pub(crate) kind: Cow<'a, str>,
    /// The area's id, for `area`.
    pub(crate) area_id: Option<Cow<'a, str>>,
    /// The area's name, for `area`.
    pub(crate) area_name: Option<Cow<'a, str>>,
    /// The pattern (or list entry) that decided.
    pub(crate) pattern: Option<Cow<'a, str>>,
    /// The CNAME chain name decided on, when a `cname` object wraps it.
    pub(crate) cname: Option<Cow<'a, str>>,
}

/// [`parse_with`] with a buffer of its own.
#[cfg(test)]
pub(crate) fn parse(line: &[u8]) -> Result<LogLine<'_>, serde_json::Error> {
    let mut out = LogLine::default();
    parse_with(line, &mut Marks::default(), &mut out)?;
    Ok(out)
}

/// Reads a line into `out`; `Err` says why it is not a query line (`out` then left in any
/// state). `marks` is the scan's buffer, kept by the caller from line to line.
///
/// The line is checked to be UTF-8 once, as a whole (std's check, fast on ASCII), then
/// read by the [field scan](super::scan); only a line the scan leaves undecided (broken,
/// or unusual: a field twice, a key with an escape) is parsed by serde_json from the
/// `&str` (its slice reader would check every borrowed string again), which gives the
/// same answer or says what is wrong.
pub(crate) fn parse_with<'a>(
    line: &'a [u8],
    marks: &mut Marks,
    out: &mut LogLine<'a>,
) -> Result<(), serde_json::Error> {
    match std::str::from_utf8(line) {
        Ok(text) if super::scan::line(text, marks, out) => {}
        Ok(text) => *out = serde_json::from_str(text)?,
        // Not UTF-8: the slice reader says where, as for any other broken line.
        Err(_) => *out = serde_json::from_slice(line)?,
    }
    Ok(())
}

/// The serde path alone, for tests that hold the scan to it.
#[cfg(test)]
pub(crate) fn parse_with_serde(text: &str) -> Result<LogLine<'_>, serde_json::Error> {
    serde_json::from_str(text)
}

impl<'a> DecidedBy<'a> {
    /// One level of `decided_by` from its fields: a wrapper (`group`, `cname`) gives its
    /// `inner` (a `cname` wrapper adds its name as the CNAME decided on).
    pub(crate) fn flatten(
        kind: Cow<'a, str>,
        id: Option<Cow<'a, str>>,
        name: Option<Cow<'a, str>>,
        pattern: Option<Cow<'a, str>>,
        inner: Option<Self>,
    ) -> Self {
        match (&*kind, inner) {
            ("cname", Some(mut inner)) => {
                inner.cname = name;
                inner
            }
            (_, Some(inner)) => inner,
            ("area", None) => DecidedBy {
                kind,
                area_id: id,
                area_name: name,
                pattern,
                cname: None,
            },
            (_, None) => DecidedBy {
                kind,
                area_id: None,
                area_name: None,
                pattern,
                cname: None,
            },
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for AreaItem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AreaItem<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an area name or {\"id\", \"name\"}")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(AreaItem {
                    id: None,
                    name: Cow::Borrowed(v),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(AreaItem {
                    id: None,
                    name: Cow::Owned(v.to_owned()),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut id = None;
                let mut name = None;
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    match &*key {
                        "id" => id = Some(map.next_value::<Str<'de>>()?.0),
                        "name" => name = Some(map.next_value::<Str<'de>>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                Ok(AreaItem { id, name })
            }
        }
        d.deserialize_any(V)
    }
}

/// Borrows a `Cow<str>` from the input where it can (serde's `Cow` impl always copies).
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for DecidedBy<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DecidedBy<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decided_by object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind: Option<Cow<'de, str>> = None;
                let mut id = None;
                let mut name = None;
                let mut pattern = None;
                let mut inner: Option<DecidedBy<'de>> = None;
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    match &*key {
                        "kind" => kind = Some(map.next_value::<Str<'de>>()?.0),
                        "id" => id = Some(map.next_value::<Str<'de>>()?.0),
                        "name" => name = Some(map.next_value::<Str<'de>>()?.0),
                        "pattern" | "entry" => pattern = Some(map.next_value::<Str<'de>>()?.0),
                        "inner" => inner = Some(map.next_value::<DecidedBy<'de>>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                Ok(DecidedBy::flatten(kind, id, name, pattern, inner))
            }
        }
        d.deserialize_map(V)
    }
}

/// `Option<Cow<str>>` that borrows (`null` is `None`).
fn optional_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Str<'de>>::deserialize(d)?.map(|s| s.0))
}

/// `Vec<Cow<str>>` that borrows: serde's `Cow<str>` would copy every string.
fn borrowed_strs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cow<'de, str>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(Str(s)) = seq.next_element::<Str<'de>>()? {
                v.push(s);
            }
            Ok(v)
        }
    }
    d.deserialize_seq(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_line_of_today_s_format_borrowing_its_strings() {
        let text = br#"{"ts":"2026-11-26T01:02:03.456789Z","client":"192.168.56.101","proto":"udp","qname":"watson.events.data.microsoft.com","qtype":"A","decision":"block","areas":["Diagnostic Data"],"patterns":["watson.*.microsoft.com"],"impact":["This means error reporting information won\u2019t be sent"],"rcode":"NOERROR","answers":1,"cached":false,"upstream":null,"duration_us":41}"#;
        let l = parse(text).unwrap();
        assert!(matches!(
            l.qname,
            Cow::Borrowed("watson.events.data.microsoft.com")
        ));
        assert!(matches!(
            l.patterns[0],
            Cow::Borrowed("watson.*.microsoft.com")
        ));
        assert_eq!(l.areas[0].name, "Diagnostic Data");
        assert!(matches!(l.areas[0].name, Cow::Borrowed(_)));
        assert_eq!(l.areas[0].id, None);
        assert_eq!(l.rcode, "NOERROR");
        assert_eq!(l.cname, None);
        assert_eq!(l.decided_by, None);
    }

    #[test]
    fn reads_areas_as_objects_and_a_nested_decided_by() {
        let text = br#"{"ts":"2026-11-26T01:02:03Z","client":"::1","qname":"cdn.example.test","decision":"block","areas":[{"id":"lab","name":"Lab \"T\""}],"patterns":["t.test"],"rcode":"NOERROR","cname":"t.test","decided_by":{"kind":"cname","name":"t.test","inner":{"kind":"group","name":"strict","inner":{"kind":"area","id":"lab","name":"Lab","pattern":"t.test","action":"block"}}}}"#;
        let l = parse(text).unwrap();
        assert_eq!(l.areas[0].id.as_deref(), Some("lab"));
        assert_eq!(l.areas[0].name, "Lab \"T\"");
        let d = l.decided_by.unwrap();
        assert_eq!(d.kind, "area");
        assert_eq!(d.area_id.as_deref(), Some("lab"));
        assert_eq!(d.area_name.as_deref(), Some("Lab"));
        assert_eq!(d.pattern.as_deref(), Some("t.test"));
        assert_eq!(d.cname.as_deref(), Some("t.test"));

        let rule = br#"{"ts":"2026-11-26T01:02:03Z","client":"::1","qname":"a.test","decision":"block","areas":[],"patterns":["*.test"],"rcode":"NOERROR","decided_by":{"kind":"rule","pattern":"*.test","note":null,"action":"block"}}"#;
        let d = parse(rule).unwrap().decided_by.unwrap();
        assert_eq!((d.kind.as_ref(), d.area_id), ("rule", None));
        let pass = br#"{"ts":"2026-11-26T01:02:03Z","client":"::1","qname":"a.test","decision":"pass","areas":[],"patterns":[],"rcode":"NOERROR","decided_by":null}"#;
        assert_eq!(parse(pass).unwrap().decided_by, None);
    }

    #[test]
    fn what_is_not_a_query_line_is_an_error() {
        for bad in [
            &b"2026-11-26T01:02:03Z 127.0.0.1 udp A x.example block"[..],
            b"{}",
            br#"{"ts":"x","client":"::1","qname":5,"decision":"pass"}"#,
            br#"{"ts":"x","client":"::1","qname":"a","decision":"pass","areas":[5]}"#,
            br#"{"ts":"x","client":"::1","qname":"a","decision":"pass","decided_by":{"id":"x"}}"#,
            b"{\"ts\":",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
