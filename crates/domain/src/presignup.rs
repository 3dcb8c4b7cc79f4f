//! The pre-sign-up decision: who is confirmed at once, who must confirm by
//! email, who is turned away. The embedded pool and the Cognito PreSignUp
//! Lambda both call [`decide`], so the two backends cannot disagree.

/// Why the pool is creating a user (Cognito's `triggerSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    SignUp,
    AdminCreateUser,
    ExternalProvider,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignUpPolicy {
    /// Only invited emails may sign up.
    #[default]
    InviteOnly,
    /// Anyone may sign up; uninvited users confirm their email with a code.
    Open,
}

impl SignUpPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "invite_only" => Some(Self::InviteOnly),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InviteOnly => "invite_only",
            Self::Open => "open",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreSignUpFacts {
    pub trigger: Trigger,
    pub has_email: bool,
    pub has_phone: bool,
    /// A phone number was proven by the same means as the email (we never do this today).
    pub phone_proven: bool,
    /// The email has an invitation reserved by an in-flight sign-up that presented its code.
    pub invitation_reserved: bool,
    pub policy: SignUpPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreSignUpDecision {
    /// The emailed code proved the address: confirm, and mark the email verified.
    Confirm {
        verify_email: bool,
        verify_phone: bool,
    },
    /// Let the user in unconfirmed; they prove the address with an emailed code.
    RequireEmailConfirmation,
    Reject {
        message: &'static str,
    },
}

pub const REJECT_NOT_INVITED: &str = "Sign-up is by invitation only";
/// What the trigger answers when it could not look the invitation up; the
/// service recognises it and answers 503, not a wrong-code 403.
pub const TRIGGER_UNAVAILABLE: &str = "Sign-up is unavailable right now; try again";
pub const REJECT_NO_EMAIL: &str = "An email address is required";

pub fn decide(facts: &PreSignUpFacts) -> PreSignUpDecision {
    match facts.trigger {
        // The operator created the user directly; Cognito ignores the flags here anyway.
        Trigger::AdminCreateUser => return PreSignUpDecision::RequireEmailConfirmation,
        // Federated sign-ins are not part of this product; refuse rather than guess.
        Trigger::ExternalProvider => {
            return PreSignUpDecision::Reject { message: REJECT_NOT_INVITED };
        }
        Trigger::SignUp => {}
    }
    if !facts.has_email {
        return PreSignUpDecision::Reject { message: REJECT_NO_EMAIL };
    }
    if facts.invitation_reserved {
        return PreSignUpDecision::Confirm { verify_email: true, verify_phone: facts.has_phone && facts.phone_proven };
    }
    match facts.policy {
        SignUpPolicy::InviteOnly => PreSignUpDecision::Reject { message: REJECT_NOT_INVITED },
        SignUpPolicy::Open => PreSignUpDecision::RequireEmailConfirmation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(invited: bool, policy: SignUpPolicy) -> PreSignUpFacts {
        PreSignUpFacts {
            trigger: Trigger::SignUp,
            has_email: true,
            has_phone: true,
            phone_proven: false,
            invitation_reserved: invited,
            policy,
        }
    }

    #[test]
    fn invited_users_are_confirmed_in_both_modes_and_phone_is_not_verified_unproven() {
        for policy in [SignUpPolicy::InviteOnly, SignUpPolicy::Open] {
            assert_eq!(
                decide(&facts(true, policy)),
                PreSignUpDecision::Confirm { verify_email: true, verify_phone: false }
            );
        }
    }

    #[test]
    fn uninvited_users_are_rejected_or_left_unconfirmed() {
        assert_eq!(
            decide(&facts(false, SignUpPolicy::InviteOnly)),
            PreSignUpDecision::Reject { message: REJECT_NOT_INVITED }
        );
        assert_eq!(decide(&facts(false, SignUpPolicy::Open)), PreSignUpDecision::RequireEmailConfirmation);
    }

    #[test]
    fn never_confirms_without_email_or_for_other_triggers() {
        let mut f = facts(true, SignUpPolicy::Open);
        f.has_email = false;
        assert!(matches!(decide(&f), PreSignUpDecision::Reject { .. }));
        let mut f = facts(true, SignUpPolicy::Open);
        f.trigger = Trigger::ExternalProvider;
        assert!(matches!(decide(&f), PreSignUpDecision::Reject { .. }));
        f.trigger = Trigger::AdminCreateUser;
        assert_eq!(decide(&f), PreSignUpDecision::RequireEmailConfirmation);
    }
}
