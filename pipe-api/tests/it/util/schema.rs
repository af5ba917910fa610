//! Checks a JSON value against a schema of an OpenAPI 3.1 document: the part of JSON
//! Schema 2020-12 that utoipa emits (`type`, `properties`, `required`, `items`, `$ref`,
//! `oneOf`/`anyOf`/`allOf`, `enum`, `minimum`/`maximum`). A keyword it does not know fails
//! the check, so a schema can never pass by being misunderstood. Objects may hold only
//! the properties the schema documents, unless it says `additionalProperties`.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "$ref",
    "oneOf",
    "anyOf",
    "allOf",
    "enum",
    "minimum",
    "maximum",
    "format",
    "description",
    "title",
    "default",
    "examples",
    "additionalProperties",
];

/// `Err` with the path and the reason where `value` breaks `schema`.
pub fn check(doc: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema_obj) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{path}: schema {schema} is not an object")),
        };
    };
    for key in schema_obj.keys() {
        if !KNOWN.contains(&key.as_str()) {
            return Err(format!(
                "{path}: schema keyword {key:?} is not understood here"
            ));
        }
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{path}: $ref {reference}"))?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{path}: $ref to a missing schema {name}"));
        }
        check(doc, target, value, path)?;
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check_flattened(doc, s, value, path)?;
        }
        // Together the parts are closed: a property none of them names is extra.
        if let Some(object) = value.as_object() {
            let named: Vec<&String> = all
                .iter()
                .map(|s| resolve(doc, s))
                .filter_map(|s| s["properties"].as_object())
                .flat_map(|p| p.keys())
                .collect();
            if let Some(extra) = object.keys().find(|k| !named.contains(k)) {
                return Err(format!("{path}: property {extra} is not in the schema"));
            }
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let passing = options
                .iter()
                .filter(|s| check(doc, s, value, path).is_ok())
                .count();
            let ok = if key == "oneOf" {
                passing == 1
            } else {
                passing >= 1
            };
            if !ok {
                return Err(format!(
                    "{path}: {value} matches {passing} of {key} {schema}"
                ));
            }
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{path}: type {types}")),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !fits {
            return Err(format!("{path}: {value} is not of type {types:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            return Err(format!("{path}: {n} < minimum {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            return Err(format!("{path}: {n} > maximum {max}"));
        }
    }
    if let Some(items) = value.as_array()
        && let Some(item_schema) = schema.get("items")
    {
        for (i, item) in items.iter().enumerate() {
            check(doc, item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object()
        && schema.get("properties").is_some()
        && schema.get("allOf").is_none()
    {
        check_object(doc, schema, object, path, true)?;
    }
    Ok(())
}

/// A part of an `allOf` (utoipa's form of `#[serde(flatten)]`): its properties must be
/// there, but the other parts' properties are not extra.
fn check_flattened(doc: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    match value.as_object() {
        Some(object) if schema.get("properties").is_some() => {
            check_object(doc, schema, object, path, false)
        }
        _ => check(doc, schema, value, path),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

fn check_object(
    doc: &Value,
    schema: &Value,
    object: &serde_json::Map<String, Value>,
    path: &str,
    closed: bool,
) -> Result<(), String> {
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if !object.contains_key(name) {
            return Err(format!("{path}: required property {name} is missing"));
        }
    }
    for (name, v) in object {
        match properties.get(name) {
            Some(s) => check(doc, s, v, &format!("{path}.{name}"))?,
            None if closed && schema.get("additionalProperties").is_none() => {
                return Err(format!("{path}: property {name} is not in the schema"));
            }
            None => {}
        }
    }
    Ok(())
}
