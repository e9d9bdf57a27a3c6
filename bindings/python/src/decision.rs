//! The decision as Python sees it: `Decision`, `Reason`, `Obligation`,
//! `BundleInfo`.

use std::sync::Arc;

use agentriage::Outcome;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};
use serde_json::{Map, Value};

use crate::convert::{map_to_python, to_python};

static OUTCOME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MEMBERS: PyOnceLock<[Py<PyAny>; 3]> = PyOnceLock::new();

/// The `agentriage.Outcome` member for `outcome` (a `str` enum defined in
/// Python, so that `decision.outcome == "reject"` holds). Looked up once.
fn outcome_member<'py>(py: Python<'py>, outcome: Outcome) -> PyResult<Bound<'py, PyAny>> {
    let members = MEMBERS.get_or_try_init(py, || -> PyResult<[Py<PyAny>; 3]> {
        let ty = OUTCOME.import(py, "agentriage._outcome", "Outcome")?;
        Ok([
            ty.call1((Outcome::Execute.as_str(),))?.unbind(),
            ty.call1((Outcome::Escalate.as_str(),))?.unbind(),
            ty.call1((Outcome::Reject.as_str(),))?.unbind(),
        ])
    })?;
    let [execute, escalate, reject] = members;
    let member = match outcome {
        Outcome::Execute => execute,
        Outcome::Escalate => escalate,
        Outcome::Reject => reject,
    };
    Ok(member.bind(py).clone())
}

/// `text` quoted as Python's `repr` quotes a `str`.
pub fn quote(text: &str) -> String {
    let q = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(q);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Strings as a Python list literal.
fn quote_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(quote).collect();
    format!("[{}]", quoted.join(", "))
}

fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(n).collect();
        format!("{cut}…")
    }
}

/// Why: one policy (or engine rule) that fired.
#[pyclass(frozen, eq, hash, module = "agentriage", get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason {
    /// `rego`, `cedar` or `agentriage`.
    pub engine: String,
    /// The policy or rule id, e.g. `R9.value_threshold`.
    pub policy: String,
    /// A message for the operator.
    pub message: String,
    /// `reject`, `escalate` or `permit`.
    pub effect: String,
}

impl From<&agentriage::Reason> for Reason {
    fn from(r: &agentriage::Reason) -> Self {
        Reason {
            engine: r.engine.as_str().to_owned(),
            policy: r.policy.clone(),
            message: r.message.clone(),
            effect: r.effect.as_str().to_owned(),
        }
    }
}

#[pymethods]
impl Reason {
    fn __repr__(&self) -> String {
        format!(
            "Reason(engine={}, policy={}, effect={}, message={})",
            quote(&self.engine),
            quote(&self.policy),
            quote(&self.effect),
            quote(&self.message)
        )
    }

    /// The reason as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("engine", &self.engine)?;
        d.set_item("policy", &self.policy)?;
        d.set_item("message", &self.message)?;
        d.set_item("effect", &self.effect)?;
        Ok(d)
    }
}

/// Something the host must do along with the outcome.
#[pyclass(frozen, eq, module = "agentriage")]
#[derive(Debug, Clone, PartialEq)]
pub struct Obligation {
    id: String,
    engine: String,
    policy: String,
    params: Map<String, Value>,
}

impl From<&agentriage::Obligation> for Obligation {
    fn from(o: &agentriage::Obligation) -> Self {
        Obligation {
            id: o.id.clone(),
            engine: o.engine.as_str().to_owned(),
            policy: o.policy.clone(),
            params: o.params.clone(),
        }
    }
}

#[pymethods]
impl Obligation {
    /// What to do, e.g. `notify-security`.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// Which engine produced it.
    #[getter]
    fn engine(&self) -> &str {
        &self.engine
    }

    /// The policy or rule that produced it.
    #[getter]
    fn policy(&self) -> &str {
        &self.policy
    }

    /// Further parameters given by the policy (a new dict on each access).
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        map_to_python(py, &self.params)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let params = map_to_python(py, &self.params)?.repr()?;
        Ok(format!(
            "Obligation(id={}, engine={}, policy={}, params={params})",
            quote(&self.id),
            quote(&self.engine),
            quote(&self.policy),
        ))
    }

    /// The obligation as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", &self.id)?;
        d.set_item("engine", &self.engine)?;
        d.set_item("policy", &self.policy)?;
        d.set_item("params", map_to_python(py, &self.params)?)?;
        Ok(d)
    }
}

/// Which bundle decided: name, revision and digest.
#[pyclass(frozen, eq, hash, module = "agentriage", get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleInfo {
    /// The bundle's name from its manifest.
    pub name: String,
    /// The bundle's revision from its manifest.
    pub revision: String,
    /// `sha256:` digest over the bundle's files.
    pub digest: String,
}

impl From<&agentriage::BundleInfo> for BundleInfo {
    fn from(b: &agentriage::BundleInfo) -> Self {
        BundleInfo {
            name: b.name.clone(),
            revision: b.revision.clone(),
            digest: b.digest.clone(),
        }
    }
}

#[pymethods]
impl BundleInfo {
    fn __repr__(&self) -> String {
        format!(
            "BundleInfo(name={}, revision={}, digest={})",
            quote(&self.name),
            quote(&self.revision),
            quote(&self.digest)
        )
    }

    /// The bundle info as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", &self.name)?;
        d.set_item("revision", &self.revision)?;
        d.set_item("digest", &self.digest)?;
        Ok(d)
    }
}

/// The answer to a request. Immutable; fields convert to Python on access.
#[pyclass(frozen, module = "agentriage")]
pub struct Decision {
    inner: agentriage::Decision,
}

impl Decision {
    /// Wraps a core decision.
    pub fn new(inner: agentriage::Decision) -> Self {
        Decision { inner }
    }
}

#[pymethods]
impl Decision {
    /// `Outcome.EXECUTE`, `Outcome.REJECT` or `Outcome.ESCALATE` (a `str` enum).
    #[getter]
    fn outcome<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        outcome_member(py, self.inner.outcome)
    }

    /// Every reason that fired: rejects, then escalations; for `execute`, the permits.
    #[getter]
    fn reasons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.reasons.iter().map(Reason::from))
    }

    /// What the host must do along with the outcome.
    #[getter]
    fn obligations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.obligations.iter().map(Obligation::from))
    }

    /// The request's trace id, or a new one.
    #[getter]
    fn trace_id(&self) -> &str {
        &self.inner.trace_id
    }

    /// A new, time-ordered id for this decision (UUID v7).
    #[getter]
    fn decision_id(&self) -> &str {
        &self.inner.decision_id
    }

    /// Which bundle decided.
    #[getter]
    fn bundle(&self) -> BundleInfo {
        BundleInfo::from(Arc::as_ref(&self.inner.bundle))
    }

    /// Time spent deciding, in microseconds.
    #[getter]
    fn duration_us(&self) -> u64 {
        self.inner.duration_us
    }

    /// The policy ids of all reasons, in order.
    #[getter]
    fn policy_ids(&self) -> Vec<String> {
        self.inner.policy_ids().map(str::to_owned).collect()
    }

    /// For an `escalate` an approval can settle: what the approver needs
    /// (`action_digest`, `reasons` with the roles that may approve each,
    /// `audience`, `expires_at`), as a dict; else `None`.
    #[getter]
    fn approval_request<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        optional_dict(
            py,
            self.inner
                .approval_request
                .as_ref()
                .map(serde_json::to_value),
        )
    }

    /// The approval the request carried and what became of it (`status`
    /// `used`, `refused` or `unused`, `approver`, `jti`, `settled`,
    /// `refused`), as a dict; else `None`.
    #[getter]
    fn approval<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        optional_dict(py, self.inner.approval.as_ref().map(serde_json::to_value))
    }

    /// The decision as a dict in the shape of the public JSON contract.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(&self.inner)
            .map_err(|e| crate::errors::internal(py, &format!("decision not serializable: {e}")))?;
        to_python(py, &value)
    }

    /// The decision as one line of JSON, for decision logs.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self) -> String {
        let bundle = format!(
            "{}@{}",
            self.inner.bundle.name,
            short(&self.inner.bundle.revision, 40)
        );
        format!(
            "Decision(outcome={}, reasons={}, obligations={}, trace_id={}, bundle={}, duration_us={})",
            quote(self.inner.outcome.as_str()),
            quote_list(self.inner.policy_ids()),
            quote_list(self.inner.obligations.iter().map(|o| o.id.as_str())),
            quote(&self.inner.trace_id),
            quote(&bundle),
            self.inner.duration_us
        )
    }
}

fn optional_dict<'py>(
    py: Python<'py>,
    v: Option<Result<serde_json::Value, serde_json::Error>>,
) -> PyResult<Bound<'py, PyAny>> {
    match v {
        None => Ok(py.None().into_bound(py)),
        Some(Ok(value)) => to_python(py, &value),
        Some(Err(e)) => Err(crate::errors::internal(
            py,
            &format!("not serializable: {e}"),
        )),
    }
}
