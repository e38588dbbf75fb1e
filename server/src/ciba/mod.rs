//! CIBA: the request lifecycle (pending → approved | denied | expired |
//! cancelled → redeemed) and token delivery in poll, ping and push mode.
//!
//! - [`request`]: reading and checking `/bc-authorize` input (form or signed request object).
//! - [`hints`]: finding the user from `login_hint`, `id_token_hint` or `login_hint_token`.
//! - [`lifecycle`]: starting a request, deciding it exactly once, expiring it,
//!   and what each decision sets in motion (tokens, ping/push notifications).
//! - [`delivery`]: the outbox worker that POSTs ping and push notifications.

pub mod delivery;
pub mod hints;
pub mod lifecycle;
pub mod request;
