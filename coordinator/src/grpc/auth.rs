//! Bearer tokens, checked in an interceptor. Admin tokens may do anything;
//! worker tokens may only call the worker service. A call without a valid
//! token is `UNAUTHENTICATED`; a worker token on the admin service is
//! `PERMISSION_DENIED`. The client side (the header sent) is
//! [`mxscope_common::wire::client::Bearer`].

use std::sync::Arc;

use mxscope_common::wire::client::{AUTHORIZATION, BEARER_PREFIX};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The tokens a coordinator accepts.
#[derive(Clone, Default)]
pub struct Tokens {
    admin: Vec<String>,
    worker: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &self.admin.len())
            .field("worker", &self.worker.len())
            .finish()
    }
}

/// Who a caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Worker,
}

impl Tokens {
    /// Tokens must be non-empty; empty lines are ignored.
    pub fn new(admin: Vec<String>, worker: Vec<String>) -> Self {
        let clean = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        };
        Self {
            admin: clean(admin),
            worker: clean(worker),
        }
    }

    fn role_of(&self, token: &str) -> Option<Role> {
        if self.admin.iter().any(|t| constant_time_eq(t, token)) {
            Some(Role::Admin)
        } else if self.worker.iter().any(|t| constant_time_eq(t, token)) {
            Some(Role::Worker)
        } else {
            None
        }
    }

    /// The interceptor of a service that needs at least `needed`.
    pub fn interceptor(&self, needed: Role) -> TokenCheck {
        TokenCheck {
            tokens: Arc::new(self.clone()),
            needed,
        }
    }
}

/// Compare without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    tokens: Arc<Tokens>,
    needed: Role,
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let token = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix(BEARER_PREFIX))
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        match (self.tokens.role_of(token), self.needed) {
            (None, _) => Err(Status::unauthenticated("invalid token")),
            (Some(Role::Admin), _) | (Some(Role::Worker), Role::Worker) => Ok(request),
            (Some(Role::Worker), Role::Admin) => Err(Status::permission_denied(
                "a worker token cannot use the admin service",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(check: &mut TokenCheck, token: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        check.call(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn roles() {
        let tokens = Tokens::new(vec!["adm".into()], vec!["wrk".into(), " ".into()]);
        let mut admin = tokens.interceptor(Role::Admin);
        let mut worker = tokens.interceptor(Role::Worker);
        assert_eq!(call(&mut admin, Some("adm")), Ok(()));
        assert_eq!(
            call(&mut admin, Some("wrk")),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(call(&mut admin, None), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut worker, Some("wrk")), Ok(()));
        assert_eq!(call(&mut worker, Some("adm")), Ok(()));
        assert_eq!(
            call(&mut worker, Some("")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            call(&mut worker, Some("nope")),
            Err(tonic::Code::Unauthenticated)
        );
    }
}
