//! [`DropboxStandIn`]: a stand-in for Dropbox's HTTP API v2 on loopback (to come).

/// A stand-in for Dropbox (to come).
#[derive(Debug)]
pub struct DropboxStandIn;
