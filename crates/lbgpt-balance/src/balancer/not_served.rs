//! [`NotServed`]: the members that passed a request on because they do not serve its model,
//! and the errors the balancer gives when that leaves nobody.

use lbgpt_core::Error;
use std::fmt::Write as _;

/// The members that answered one request with [`Error::ModelNotServed`] (decided before any
/// network call), in the order they were asked.
#[derive(Debug, Default)]
pub(crate) struct NotServed {
    /// The model, as the first member named it.
    model: Option<String>,
    /// Each member's name and its reason (what it serves instead).
    members: Vec<(String, String)>,
}

impl NotServed {
    /// Notes that `member` does not serve the request's model, as `error` says.
    pub(crate) fn record(&mut self, member: &str, error: Error) {
        let (model, detail) = match error {
            Error::ModelNotServed { model, detail, .. } => (model, detail),
            other => (String::new(), other.to_string()),
        };
        if self.model.is_none() && !model.is_empty() {
            self.model = Some(model);
        }
        self.members.push((member.to_owned(), detail));
    }

    /// How many members passed the request on.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// The error when every member that could be asked passed the request on: the model and
    /// each member with its reason. `None` when no member passed it on.
    pub(crate) fn error(&self) -> Option<Error> {
        if self.members.is_empty() {
            return None;
        }
        let mut detail = String::from("no member of the balancer serves it (");
        for (index, (member, reason)) in self.members.iter().enumerate() {
            if index > 0 {
                detail.push_str("; ");
            }
            let _ = write!(detail, "{member}: {reason}");
        }
        detail.push(')');
        Some(Error::ModelNotServed {
            model: self.model.clone().unwrap_or_default(),
            members: self.members.iter().map(|(name, _)| name.clone()).collect(),
            detail,
        })
    }

    /// `error` (when it is [`Error::NoMemberAvailable`]) with the members that do not serve
    /// the model named at the end of its reason, so the reader knows why they were not used.
    pub(crate) fn annotate(&self, error: Error) -> Error {
        match error {
            Error::NoMemberAvailable {
                mut reason,
                retry_after,
            } if !self.members.is_empty() => {
                let names: Vec<&str> = self.members.iter().map(|(name, _)| name.as_str()).collect();
                let _ = write!(
                    reason,
                    "; model `{}` is not served by {}",
                    self.model.as_deref().unwrap_or_default(),
                    names.join(", ")
                );
                Error::NoMemberAvailable {
                    reason,
                    retry_after,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused(member: &str, mapped: &str) -> Error {
        Error::ModelNotServed {
            model: "text-embedding-3-small".into(),
            members: vec![member.into()],
            detail: format!("no Azure deployment is mapped to it (mapped models: {mapped})"),
        }
    }

    #[test]
    fn nobody_serving_the_model_names_it_and_every_member_with_its_reason() {
        let mut not_served = NotServed::default();
        assert!(not_served.error().is_none());
        not_served.record("azure-eu", refused("azure-eu", "gpt-4o"));
        not_served.record("azure-us", refused("azure-us", "gpt-4o-mini"));
        assert_eq!(not_served.len(), 2);
        let error = not_served.error().expect("an error");
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            "model `text-embedding-3-small` is not served by azure-eu, azure-us: no member of \
             the balancer serves it (azure-eu: no Azure deployment is mapped to it (mapped \
             models: gpt-4o); azure-us: no Azure deployment is mapped to it (mapped models: \
             gpt-4o-mini))"
        );
    }

    #[test]
    fn an_unavailable_error_says_which_members_do_not_serve_the_model() {
        let mut not_served = NotServed::default();
        let busy = Error::NoMemberAvailable {
            reason: "none of the 1 members can take requests now: openai is disabled".into(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            not_served.annotate(busy.clone()).to_string(),
            busy.to_string()
        );
        not_served.record("azure", refused("azure", "gpt-4o"));
        let annotated = not_served.annotate(busy);
        assert_eq!(annotated.retry_after(), Some(Duration::from_secs(1)));
        assert!(
            annotated.to_string().contains(
                "openai is disabled; model `text-embedding-3-small` is not served by azure"
            ),
            "{annotated}"
        );
        let other = Error::Cancelled;
        assert!(matches!(not_served.annotate(other), Error::Cancelled));
    }
}
