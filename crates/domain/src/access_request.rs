//! Requests for an invitation, left by people who have none (invite-only mode).

use time::OffsetDateTime;

use crate::Email;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRequestStatus {
    /// Waiting for the operator; at most one per email.
    Open,
    /// The operator sent an invitation.
    Approved,
    Rejected,
}

impl AccessRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: String,
    pub email: Email,
    pub status: AccessRequestStatus,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

impl AccessRequest {
    /// Only an open request can be approved or rejected.
    pub fn check_open(&self) -> Result<(), crate::Error> {
        if self.status == AccessRequestStatus::Open { Ok(()) } else { Err(crate::Error::AccessRequestDecided) }
    }
}
