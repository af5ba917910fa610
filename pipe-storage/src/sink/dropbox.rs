//! `DropboxSink`: a folder of a Dropbox account, through its HTTP API v2 (to come).
