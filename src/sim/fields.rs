//! Hub's `fields=` parameter: a comma list with parentheses for nested objects
//! (`id,name,scope(id,name)`). Without it only immediate fields come back, and nested objects
//! carry just their `id`, as in Hub's and YouTrack's REST APIs.

use serde_json::{Map, Value};

/// A parsed `fields=` selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Vec<(String, Option<Fields>)>);

impl Fields {
    /// Parses a selection; `None` when its parentheses do not balance or a name is empty.
    pub fn parse(text: &str) -> Option<Fields> {
        let (fields, rest) = parse_list(text.as_bytes())?;
        rest.is_empty().then_some(fields)
    }
}

fn parse_list(mut input: &[u8]) -> Option<(Fields, &[u8])> {
    let mut fields = Vec::new();
    loop {
        let end = input
            .iter()
            .position(|b| matches!(b, b',' | b'(' | b')'))
            .unwrap_or(input.len());
        let name = std::str::from_utf8(&input[..end]).ok()?.trim().to_owned();
        if name.is_empty() {
            return None;
        }
        input = &input[end..];
        let nested = if input.first() == Some(&b'(') {
            let (nested, rest) = parse_list(&input[1..])?;
            input = rest.strip_prefix(b")")?;
            Some(nested)
        } else {
            None
        };
        fields.push((name, nested));
        match input.first() {
            Some(b',') => input = &input[1..],
            _ => return Some((Fields(fields), input)),
        }
    }
}

/// Applies `fields` (or Hub's default when `None`) to one object.
pub fn project(value: &Value, fields: Option<&Fields>) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| project(v, fields)).collect()),
        Value::Object(object) => match fields {
            Some(fields) => select(object, fields),
            None => immediate(object),
        },
        other => other.clone(),
    }
}

fn select(object: &Map<String, Value>, fields: &Fields) -> Value {
    let mut out = Map::new();
    if let Some(kind) = object.get("type").or_else(|| object.get("$type")) {
        let key = if object.contains_key("type") {
            "type"
        } else {
            "$type"
        };
        out.insert(key.to_owned(), kind.clone());
    }
    for (name, nested) in &fields.0 {
        if let Some(value) = object.get(name) {
            let value = match nested {
                Some(nested) => project(value, Some(nested)),
                None => shallow(value),
            };
            out.insert(name.clone(), value);
        }
    }
    Value::Object(out)
}

fn immediate(object: &Map<String, Value>) -> Value {
    Value::Object(
        object
            .iter()
            .map(|(name, value)| (name.clone(), shallow(value)))
            .collect(),
    )
}

/// A nested object reduced to its `id` (and type), as Hub returns it when not asked for more.
fn shallow(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let keep = ["type", "$type", "id"];
            Value::Object(
                object
                    .iter()
                    .filter(|(name, _)| keep.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(shallow).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_selections_and_refuses_broken_ones() {
        let fields = Fields::parse("id,name,scope(id,name)").expect("valid");
        assert_eq!(fields.0.len(), 3);
        assert!(fields.0[2].1.is_some());
        for broken in ["", "id,", "scope(id", "id)", "a(,b)"] {
            assert_eq!(Fields::parse(broken), None, "{broken}");
        }
    }

    #[test]
    fn selects_requested_fields_and_defaults_to_ids_for_nested_objects() {
        let token = json!({
            "type": "permanentToken", "id": "47-1", "name": "ci", "secret": "x",
            "scope": [{"type": "service", "id": "0-0-0-0-0", "name": "YouTrack Administration"}],
        });
        let fields = Fields::parse("id,scope(id,name)").expect("valid");
        assert_eq!(
            project(&token, Some(&fields)),
            json!({"type": "permanentToken", "id": "47-1",
                   "scope": [{"type": "service", "id": "0-0-0-0-0", "name": "YouTrack Administration"}]})
        );
        let default = project(&token, None);
        assert_eq!(
            default["scope"],
            json!([{"type": "service", "id": "0-0-0-0-0"}])
        );
        assert_eq!(default["name"], "ci");
    }
}
