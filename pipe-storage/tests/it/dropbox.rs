//! The Dropbox sink against `DropboxStandIn` (to come).
