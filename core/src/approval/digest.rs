//! The action digest: what an approval is bound to.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::request::Request;

/// The canonical action an approval is bound to, as JSON: the principal's
/// id, the action's name, the resource (type, id and every attribute) and
/// the context fields the bundle names (`[approvals] context_fields`; a
/// named field the request lacks is `null`, so adding it later changes the
/// digest).
///
/// ```
/// # use agentriage::Request;
/// let request = Request::new("spiffe://acme.example/a", "payment.release");
/// let action = agentriage::approval::canonical_action(&request, &["workflow_id".to_owned()]);
/// assert_eq!(
///     action.to_string(),
///     r#"{"action":"payment.release","context":{"workflow_id":null},"principal":"spiffe://acme.example/a","resource":null}"#
/// );
/// ```
pub fn canonical_action(request: &Request, context_fields: &[String]) -> Value {
    let mut o = Map::new();
    o.insert("principal".into(), request.principal.id.clone().into());
    o.insert("action".into(), request.action.name.clone().into());
    let resource = request.resource.as_ref().map_or(Value::Null, |r| {
        let mut m = Map::new();
        m.insert("type".into(), r.kind.clone().into());
        m.insert("id".into(), r.id.clone().map_or(Value::Null, Value::from));
        m.insert("attributes".into(), Value::Object(r.attributes.clone()));
        Value::Object(m)
    });
    o.insert("resource".into(), resource);
    let mut context = Map::new();
    for field in context_fields {
        context.insert(
            field.clone(),
            request.context.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    o.insert("context".into(), Value::Object(context));
    Value::Object(o)
}

/// `sha256:` and the lowercase hex SHA-256 of the canonical action in RFC
/// 8785 form (the decision log's canonical encoding): any change to a
/// digested field — another amount, resource, principal, action or named
/// context value — gives another digest.
pub fn action_digest(request: &Request, context_fields: &[String]) -> String {
    let bytes = crate::audit::canonical_bytes(&canonical_action(request, context_fields));
    format!("sha256:{}", crate::audit::hex(&Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: Value) -> Request {
        Request::from_value(&serde_json::json!({
            "principal": {"id": "spiffe://acme.example/p"},
            "action": {"name": "payment.release"},
            "resource": {"type": "invoice", "id": "INV-1", "attributes": {"amount_usd": amount, "b": 1}},
            "context": {"workflow_id": "wf-1", "note": "free text"}
        }))
        .unwrap()
    }

    #[test]
    fn every_digested_field_changes_the_digest() {
        let fields = vec!["workflow_id".to_owned()];
        let base = action_digest(&request(1.into()), &fields);
        assert!(base.starts_with("sha256:") && base.len() == 71);
        assert_eq!(base, action_digest(&request(1.into()), &fields));
        assert_ne!(base, action_digest(&request(2.into()), &fields));
        let mut r = request(1.into());
        r.principal.id.push('x');
        assert_ne!(base, action_digest(&r, &fields));
        let mut r = request(1.into());
        r.action.name.push('x');
        assert_ne!(base, action_digest(&r, &fields));
        let mut r = request(1.into());
        r.context.insert("workflow_id".into(), "wf-2".into());
        assert_ne!(base, action_digest(&r, &fields));
        // A context field the bundle does not name is not digested.
        let mut r = request(1.into());
        r.context.insert("note".into(), "other".into());
        assert_eq!(base, action_digest(&r, &fields));
        // Attribute order does not matter (canonical JSON).
        let reordered = Request::from_value(&serde_json::json!({
            "principal": {"id": "spiffe://acme.example/p"},
            "action": {"name": "payment.release"},
            "resource": {"type": "invoice", "id": "INV-1", "attributes": {"b": 1, "amount_usd": 1}},
            "context": {"workflow_id": "wf-1"}
        }))
        .unwrap();
        assert_eq!(base, action_digest(&reordered, &fields));
    }
}
