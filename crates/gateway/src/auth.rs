//! The caller of a request: its bearer token authenticated, then its rate limit applied.

// Errors here end the request; their size does not matter next to an HTTP round trip.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use verity_core::{Authenticator, Caller, Scope, VerityError};

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::request_log::CallerSubject;

/// Requests per minute, and how many may come at once above that pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// One token bucket per caller (per key; per client address when authentication is off), and
/// one per client address for requests whose credentials are refused: an address over that
/// budget is refused at once, before its next token costs a store lookup.
pub struct RateLimiter {
    callers: DefaultKeyedRateLimiter<String>,
    refused: DefaultKeyedRateLimiter<String>,
    /// Addresses over their budget of refused credentials, and until when.
    blocked: Mutex<HashMap<String, Instant>>,
}

/// Addresses remembered as blocked at most; beyond, expired ones are forgotten first.
const MAX_BLOCKED: usize = 10_000;

fn rate_limited(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut error = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests from this caller; retry in {seconds} s"),
    );
    error.retry_after = Some(seconds.max(1));
    error
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Option<Self> {
        let per_minute = NonZeroU32::new(limit.per_minute)?;
        let burst = NonZeroU32::new(limit.burst.max(1))?;
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Some(Self {
            callers: DefaultKeyedRateLimiter::keyed(quota),
            refused: DefaultKeyedRateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    fn check(&self, key: String) -> Result<(), ApiError> {
        self.callers.check_key(&key).map_err(|not_until| {
            rate_limited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Refuses an address still over its budget of refused credentials.
    fn check_blocked(&self, address: &str) -> Result<(), ApiError> {
        let blocked = self.blocked.lock().expect("not poisoned");
        match blocked.get(address) {
            Some(until) if *until > Instant::now() => Err(rate_limited(*until - Instant::now())),
            _ => Ok(()),
        }
    }

    /// Counts a refused request from `address`; over the budget, the address is blocked for
    /// as long as the bucket takes to refill one token.
    fn refused(&self, address: &str) -> Result<(), ApiError> {
        let Err(not_until) = self.refused.check_key(&address.to_string()) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let now = Instant::now();
        let mut blocked = self.blocked.lock().expect("not poisoned");
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(address.to_string(), now + wait);
        }
        Err(rate_limited(wait))
    }
}

/// The authenticated caller of a request, as a handler argument.
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// The caller, if it holds `scope`: for an early refusal before a request's body is read.
    /// The service checks every use case itself ([`Caller::require`]).
    pub fn require(self, scope: Scope) -> Result<Caller, ApiError> {
        self.0.require(scope)?;
        Ok(self.0)
    }
}

fn bearer(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(VerityError::Unauthenticated(
            "the Authorization header must be \"Bearer <token>\"".to_string(),
        )
        .into()),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authenticator = request.app_data::<web::Data<dyn Authenticator>>().cloned();
        let limiter = request
            .app_data::<web::Data<Option<RateLimiter>>>()
            .cloned();
        let token = bearer(request);
        let address = request
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let request = request.clone();
        Box::pin(async move {
            let authenticator: Arc<dyn Authenticator> = authenticator
                .ok_or_else(|| {
                    ApiError::from(VerityError::internal(
                        "gateway",
                        "no authenticator configured",
                    ))
                })?
                .into_inner();
            let limiter = limiter.as_ref().and_then(|l| l.get_ref().as_ref());
            if let Some(limiter) = limiter {
                limiter.check_blocked(&address)?;
            }
            let caller = match authenticator.authenticate(token?.as_deref()).await {
                Ok(caller) => caller,
                Err(error) => {
                    if let Some(limiter) = limiter {
                        limiter.refused(&address)?;
                    }
                    return Err(error.into());
                }
            };
            request
                .extensions_mut()
                .insert(CallerSubject(caller.subject.clone()));
            if let Some(limiter) = limiter {
                let key = if caller.subject == "local" {
                    format!("address:{address}")
                } else {
                    caller.subject.clone()
                };
                limiter.check(key)?;
            }
            Ok(Authenticated(caller))
        })
    }
}
