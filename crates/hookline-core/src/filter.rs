//! Which events a destination wants: an allow-list of event types (`run.*` prefixes) and
//! an optional JSON filter on the envelope, Mongo-style (`{"data.cost": {"$gt": 1}}`).
//! Filters are parsed when a destination is created, so a bad one is a 422 then, never a
//! surprise at delivery time.

use std::cmp::Ordering;

use serde_json::Value;

use crate::ValidationError;

const MAX_DEPTH: usize = 8;
const MAX_CLAUSES: usize = 64;

/// One entry of `types`: an exact type, a `prefix.*` wildcard, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    Exact(String),
    /// Matches types that start with this text, which ends with a dot.
    Prefix(String),
    Any,
}

impl TypePattern {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        if text == "*" {
            return Ok(Self::Any);
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            crate::event::EventType::parse(field, prefix)?;
            return Ok(Self::Prefix(format!("{prefix}.")));
        }
        crate::event::EventType::parse(field, text)
            .map(|t| Self::Exact(t.as_str().to_owned()))
            .map_err(|_| {
                ValidationError::new(
                    field,
                    format!("'{text}' is not an event type, a 'prefix.*' pattern or '*'"),
                )
            })
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Exact(t) => t == event_type,
            Self::Prefix(p) => event_type.starts_with(p.as_str()),
            Self::Any => true,
        }
    }

    /// The text this pattern was parsed from.
    pub fn to_text(&self) -> String {
        match self {
            Self::Exact(t) => t.clone(),
            Self::Prefix(p) => format!("{p}*"),
            Self::Any => "*".to_owned(),
        }
    }
}

/// A parsed JSON filter, kept together with the JSON it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    source: Value,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Field { path: Vec<String>, op: Op },
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
}

impl Filter {
    pub fn parse(field: &str, source: &Value) -> Result<Self, ValidationError> {
        let mut clauses = 0;
        let root = parse_object(field, source, 0, &mut clauses)?;
        Ok(Self {
            source: source.clone(),
            root,
        })
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether the envelope (as JSON) passes the filter.
    pub fn matches(&self, envelope: &Value) -> bool {
        eval(&self.root, envelope)
    }
}

fn parse_object(
    field: &str,
    value: &Value,
    depth: usize,
    clauses: &mut usize,
) -> Result<Node, ValidationError> {
    let err = |m: String| ValidationError::new(field, m);
    if depth > MAX_DEPTH {
        return Err(err(format!("is nested deeper than {MAX_DEPTH} levels")));
    }
    let Value::Object(map) = value else {
        return Err(err("must be a JSON object".into()));
    };
    let mut nodes = Vec::with_capacity(map.len());
    for (key, v) in map {
        *clauses += 1;
        if *clauses > MAX_CLAUSES {
            return Err(err(format!("has more than {MAX_CLAUSES} clauses")));
        }
        let node = match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = v else {
                    return Err(err(format!("{key} takes an array of filters")));
                };
                if items.is_empty() {
                    return Err(err(format!("{key} needs at least one filter")));
                }
                let children = items
                    .iter()
                    .map(|item| parse_object(field, item, depth + 1, clauses))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "$and" {
                    Node::And(children)
                } else {
                    Node::Or(children)
                }
            }
            k if k.starts_with('$') => return Err(err(format!("unknown operator {k}"))),
            path => parse_field(field, path, v)?,
        };
        nodes.push(node);
    }
    Ok(Node::And(nodes))
}

fn parse_field(field: &str, path: &str, value: &Value) -> Result<Node, ValidationError> {
    let err = |m: String| ValidationError::new(field, m);
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(err(format!("'{path}' is not a dotted path")));
    }
    let operators = match value {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => map,
        literal => {
            return Ok(Node::Field {
                path: segments,
                op: Op::Eq(literal.clone()),
            });
        }
    };
    let mut nodes = Vec::with_capacity(operators.len());
    for (name, operand) in operators {
        let op = match (name.as_str(), operand) {
            ("$eq", v) => Op::Eq(v.clone()),
            ("$ne", v) => Op::Ne(v.clone()),
            ("$gt", v @ (Value::Number(_) | Value::String(_))) => {
                Op::Cmp(Ordering::Greater, false, v.clone())
            }
            ("$gte", v @ (Value::Number(_) | Value::String(_))) => {
                Op::Cmp(Ordering::Greater, true, v.clone())
            }
            ("$lt", v @ (Value::Number(_) | Value::String(_))) => {
                Op::Cmp(Ordering::Less, false, v.clone())
            }
            ("$lte", v @ (Value::Number(_) | Value::String(_))) => {
                Op::Cmp(Ordering::Less, true, v.clone())
            }
            ("$gt" | "$gte" | "$lt" | "$lte", _) => {
                return Err(err(format!(
                    "{name} on '{path}' takes a number or a string"
                )));
            }
            ("$in", Value::Array(items)) => Op::In(items.clone()),
            ("$nin", Value::Array(items)) => Op::Nin(items.clone()),
            ("$in" | "$nin", _) => {
                return Err(err(format!("{name} on '{path}' takes an array")));
            }
            ("$exists", Value::Bool(b)) => Op::Exists(*b),
            ("$exists", _) => return Err(err(format!("$exists on '{path}' takes true or false"))),
            (other, _) => return Err(err(format!("unknown operator {other} on '{path}'"))),
        };
        nodes.push(Node::Field {
            path: segments.clone(),
            op,
        });
    }
    Ok(Node::And(nodes))
}

fn lookup<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Equality where `1` and `1.0` are the same number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn json_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eval(node: &Node, envelope: &Value) -> bool {
    match node {
        Node::And(children) => children.iter().all(|c| eval(c, envelope)),
        Node::Or(children) => children.iter().any(|c| eval(c, envelope)),
        Node::Field { path, op } => {
            let found = lookup(envelope, path);
            match op {
                Op::Eq(v) => found.is_some_and(|f| json_eq(f, v)),
                Op::Ne(v) => !found.is_some_and(|f| json_eq(f, v)),
                Op::Cmp(want, or_equal, v) => found
                    .and_then(|f| json_cmp(f, v))
                    .is_some_and(|o| o == *want || (*or_equal && o == Ordering::Equal)),
                Op::In(items) => found.is_some_and(|f| items.iter().any(|i| json_eq(f, i))),
                Op::Nin(items) => !found.is_some_and(|f| items.iter().any(|i| json_eq(f, i))),
                Op::Exists(want) => found.is_some() == *want,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Value {
        json!({
            "id": "evt_1", "type": "run.failed", "stream": "sess_1", "seq": 4,
            "level": "user",
            "data": {"agent": {"id": "a1"}, "cost_usd": 2.5, "tags": ["x", "y"], "name": "beta"}
        })
    }

    fn check(filter: Value) -> bool {
        Filter::parse("filter", &filter)
            .unwrap()
            .matches(&envelope())
    }

    #[test]
    fn type_patterns_match_exact_prefix_and_any() {
        let exact = TypePattern::parse("types", "run.failed").unwrap();
        let prefix = TypePattern::parse("types", "run.*").unwrap();
        let any = TypePattern::parse("types", "*").unwrap();
        assert!(exact.matches("run.failed") && !exact.matches("run.failed.hard"));
        assert!(prefix.matches("run.failed") && !prefix.matches("runner.x"));
        assert!(!prefix.matches("run"));
        assert!(any.matches("whatever"));
        assert_eq!(prefix.to_text(), "run.*");
        assert!(TypePattern::parse("types", "run.**").is_err());
        assert!(TypePattern::parse("types", "bad type").is_err());
    }

    #[test]
    fn comparison_operators() {
        assert!(check(json!({"data.agent.id": {"$eq": "a1"}})));
        assert!(check(json!({"data.agent.id": "a1"})));
        assert!(!check(json!({"data.agent.id": {"$ne": "a1"}})));
        assert!(check(json!({"data.cost_usd": {"$gt": 1}})));
        assert!(!check(json!({"data.cost_usd": {"$gt": 2.5}})));
        assert!(check(json!({"data.cost_usd": {"$gte": 2.5}})));
        assert!(check(json!({"data.cost_usd": {"$lt": 3, "$gt": 2}})));
        assert!(!check(json!({"data.cost_usd": {"$lte": 2}})));
        assert!(check(json!({"seq": {"$eq": 4.0}})));
        assert!(check(json!({"data.name": {"$gt": "alpha"}})));
        assert!(
            !check(json!({"data.name": {"$gt": 1}})),
            "string vs number never compares"
        );
    }

    #[test]
    fn membership_and_existence() {
        assert!(check(json!({"stream": {"$in": ["sess_1", "sess_2"]}})));
        assert!(!check(json!({"stream": {"$nin": ["sess_1"]}})));
        assert!(check(json!({"data.missing": {"$nin": ["x"]}})));
        assert!(check(json!({"data.missing": {"$exists": false}})));
        assert!(check(json!({"data.tags.1": "y"})));
        assert!(!check(json!({"data.missing": {"$exists": true}})));
        assert!(!check(json!({"data.missing": {"$eq": null}})));
    }

    #[test]
    fn and_or_combine() {
        assert!(check(
            json!({"$or": [{"type": "run.ok"}, {"type": "run.failed"}]})
        ));
        assert!(!check(
            json!({"$and": [{"type": "run.failed"}, {"seq": 5}]})
        ));
        assert!(check(
            json!({"type": "run.failed", "$or": [{"seq": 1}, {"seq": 4}]})
        ));
    }

    #[test]
    fn invalid_filters_are_refused_with_a_reason() {
        for (bad, why) in [
            (json!([1]), "JSON object"),
            (json!({"$xor": []}), "unknown operator"),
            (json!({"a": {"$regex": "x"}}), "unknown operator"),
            (json!({"a": {"$in": 3}}), "array"),
            (json!({"a": {"$gt": [1]}}), "number or a string"),
            (json!({"a": {"$exists": 1}}), "true or false"),
            (json!({"$or": []}), "at least one"),
            (json!({"a..b": 1}), "dotted path"),
        ] {
            let err = Filter::parse("filter", &bad).unwrap_err();
            assert_eq!(err.field, "filter");
            assert!(err.message.contains(why), "{bad}: {}", err.message);
        }
        let mut deep = json!({"a": 1});
        for _ in 0..10 {
            deep = json!({"$and": [deep]});
        }
        assert!(Filter::parse("filter", &deep).is_err());
    }
}
