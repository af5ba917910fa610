//! pipe-api against a real SQLite catalog, through the router as a server would call it.

mod audit;
mod auth;
mod deliveries;
mod environments;
mod openapi;
mod pipe_compat;
mod recordings;
mod util;
mod webhooks;
