//! Normalizing LTI role strings to Passback's [`Role`].
//!
//! Accepts LTI 1.3 LIS v2 URIs (`…/membership#Learner`, sub-roles such as
//! `…/membership/Instructor#TeachingAssistant`, institution and system roles),
//! LTI 1.1 URNs (`urn:lti:role:ims/lis/Learner`, `urn:lti:instrole:…`) and short
//! names (`Learner`), and Blackboard's course and system roles (`COURSE:STUDENT`,
//! `SYSTEM:ADMIN`, the `tcrole` short forms and the display names such as
//! `Teaching Assistant` or `Course Builder`). Roles are parsed, never
//! substring-matched (a TA sub-role URI contains "Instructor"), and compared
//! case-insensitively (Canvas sends `…/membership/instructor#TeachingAssistant`).

use crate::model::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Context,
    Institution,
    System,
    Other,
}

/// Split one role string into (scope, base role, sub-role), lower-cased.
fn parse(role: &str) -> (Scope, String, Option<String>) {
    let r = role.trim().to_ascii_lowercase();
    let (scope, rest) = if let Some(rest) =
        r.strip_prefix("http://purl.imsglobal.org/vocab/lis/v2/membership")
    {
        (Scope::Context, rest)
    } else if let Some(rest) = r.strip_prefix("http://purl.imsglobal.org/vocab/lis/v2/institution/person") {
        (Scope::Institution, rest)
    } else if let Some(rest) = r.strip_prefix("http://purl.imsglobal.org/vocab/lis/v2/system/person") {
        (Scope::System, rest)
    } else if let Some(rest) = r.strip_prefix("http://www.imsglobal.org/imspurl/lis/v1/vocab/membership") {
        (Scope::Context, rest)
    } else if let Some(rest) = r.strip_prefix("urn:lti:role:ims/lis/") {
        // LTI 1.1 sub-roles are written `Role/SubRole`.
        let (base, sub) = match rest.split_once('/') {
            Some((b, s)) => (b.to_string(), Some(s.to_string())),
            None => (rest.to_string(), None),
        };
        return (Scope::Context, base, sub);
    } else if let Some(rest) = r.strip_prefix("urn:lti:instrole:ims/lis/") {
        return (Scope::Institution, rest.to_string(), None);
    } else if let Some(rest) = r.strip_prefix("urn:lti:sysrole:ims/lis/") {
        return (Scope::System, rest.to_string(), None);
    } else if let Some(rest) = r.strip_prefix("course:") {
        // Blackboard proxy-tool `role`: COURSE:STUDENT, COURSE:TEACHING_ASSISTANT, ...
        return (Scope::Context, blackboard_name(rest), None);
    } else if let Some(rest) = r.strip_prefix("system:") {
        return (Scope::System, blackboard_name(rest), None);
    } else if r.contains(':') || r.contains('/') {
        return (Scope::Other, r, None);
    } else {
        // A short name is a context role (LTI short names, Blackboard `tcrole` values and
        // display names alike).
        return (Scope::Context, blackboard_name(&r), None);
    };
    // `#Learner`, or `/Instructor#TeachingAssistant` for a sub-role.
    match rest.split_once('#') {
        Some(("", base)) => (scope, base.to_string(), None),
        Some((path, sub)) => (
            scope,
            path.trim_start_matches('/').to_string(),
            Some(sub.to_string()),
        ),
        None => (Scope::Other, r.clone(), None),
    }
}

/// `TEACHING_ASSISTANT`, `Teaching Assistant` and `teachingassistant` are one name.
fn blackboard_name(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, '_' | ' ' | '-'))
        .collect()
}

fn context_role(base: &str, sub: Option<&str>) -> Role {
    match base {
        "learner" | "student" => Role::Learner,
        "instructor" if matches!(sub, Some("teachingassistant" | "grader")) => Role::TeachingAssistant,
        "instructor" => Role::Instructor,
        "teachingassistant" | "grader" => Role::TeachingAssistant,
        "contentdeveloper" | "coursebuilder" => Role::ContentDeveloper,
        // Blackboard Learn's facilitator teaches without editing the course.
        "facilitator" => Role::Instructor,
        "administrator" => Role::Administrator,
        "mentor" => Role::Mentor,
        _ => Role::Other,
    }
}

fn institution_role(base: &str) -> Role {
    match base {
        "student" | "learner" | "prospectivestudent" => Role::Learner,
        "faculty" | "instructor" => Role::Instructor,
        "administrator" => Role::Administrator,
        "mentor" | "observer" => Role::Mentor,
        _ => Role::Other,
    }
}

fn system_role(base: &str) -> Role {
    match base {
        "administrator" | "sysadmin" | "accountadmin" | "admin" => Role::Administrator,
        _ => Role::Other,
    }
}

/// Most specific first: a TA also carrying `Instructor` is a TA.
const PRECEDENCE: [Role; 7] = [
    Role::TeachingAssistant,
    Role::Instructor,
    Role::Administrator,
    Role::ContentDeveloper,
    Role::Mentor,
    Role::Learner,
    Role::Other,
];

/// The one role Passback keeps for a person in a context. Context roles win over
/// institution roles, which win over system roles; an empty list is `Unknown`.
pub fn normalize_roles<S: AsRef<str>>(roles: &[S]) -> Role {
    let parsed: Vec<_> = roles
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| !r.trim().is_empty())
        .map(parse)
        .collect();
    if parsed.is_empty() {
        return Role::Unknown;
    }
    let pick = |scope: Scope, f: &dyn Fn(&str, Option<&str>) -> Role| -> Option<Role> {
        let found: Vec<Role> = parsed
            .iter()
            .filter(|(s, _, _)| *s == scope)
            .map(|(_, b, sub)| f(b, sub.as_deref()))
            .collect();
        PRECEDENCE.iter().copied().find(|r| found.contains(r))
    };
    pick(Scope::Context, &context_role)
        .or_else(|| pick(Scope::Institution, &|b, _| institution_role(b)))
        .or_else(|| pick(Scope::System, &|b, _| system_role(b)))
        .unwrap_or(Role::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership";

    #[test]
    fn lti13_context_roles() {
        assert_eq!(normalize_roles(&[format!("{M}#Learner")]), Role::Learner);
        assert_eq!(normalize_roles(&[format!("{M}#Instructor")]), Role::Instructor);
        assert_eq!(normalize_roles(&[format!("{M}#Mentor")]), Role::Mentor);
        assert_eq!(
            normalize_roles(&[format!("{M}#ContentDeveloper")]),
            Role::ContentDeveloper
        );
        assert_eq!(
            normalize_roles(&[format!("{M}#Administrator")]),
            Role::Administrator
        );
        assert_eq!(normalize_roles(&[format!("{M}#Member")]), Role::Other);
        // Canvas TA: a lower-case sub-role URI plus plain Instructor.
        assert_eq!(
            normalize_roles(&[
                format!("{M}/instructor#TeachingAssistant"),
                format!("{M}#Instructor")
            ]),
            Role::TeachingAssistant
        );
        assert_eq!(
            normalize_roles(&[format!("{M}/Instructor#Grader")]),
            Role::TeachingAssistant
        );
        assert_eq!(
            normalize_roles(&[format!("{M}/Learner#NonCreditLearner")]),
            Role::Learner
        );
        // A student who is also staff somewhere else in the institution stays a learner here.
        assert_eq!(
            normalize_roles(&[
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty".to_string(),
                format!("{M}#Learner"),
            ]),
            Role::Learner
        );
    }

    #[test]
    fn institution_system_lti11_and_short_names() {
        assert_eq!(
            normalize_roles(&["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"]),
            Role::Learner
        );
        assert_eq!(
            normalize_roles(&["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"]),
            Role::Administrator
        );
        assert_eq!(normalize_roles(&["urn:lti:role:ims/lis/Learner"]), Role::Learner);
        assert_eq!(
            normalize_roles(&["urn:lti:role:ims/lis/TeachingAssistant/Grader"]),
            Role::TeachingAssistant
        );
        assert_eq!(
            normalize_roles(&["urn:lti:instrole:ims/lis/Faculty"]),
            Role::Instructor
        );
        assert_eq!(normalize_roles(&["Learner"]), Role::Learner);
        assert_eq!(normalize_roles(&["Instructor", "Learner"]), Role::Instructor);
        assert_eq!(
            normalize_roles(&["http://purl.imsglobal.org/vocab/lis/v2/person#None"]),
            Role::Other
        );
        assert_eq!(normalize_roles::<&str>(&[]), Role::Unknown);
        assert_eq!(
            normalize_roles(&["Student"]),
            Role::Learner,
            "institution-style short name"
        );
        assert_eq!(normalize_roles(&["  "]), Role::Unknown);
    }

    #[test]
    fn blackboard_course_and_system_roles() {
        for (role, want) in [
            ("COURSE:STUDENT", Role::Learner),
            ("COURSE:INSTRUCTOR", Role::Instructor),
            ("COURSE:TEACHING_ASSISTANT", Role::TeachingAssistant),
            ("COURSE:COURSE_BUILDER", Role::ContentDeveloper),
            ("COURSE:GRADER", Role::TeachingAssistant),
            ("COURSE:GUEST", Role::Other),
            ("SYSTEM:ADMIN", Role::Administrator),
            ("SYSTEM:NONE", Role::Other),
            ("course:student", Role::Learner),
            // `tcrole` is the part after the colon; display names come with spaces.
            ("TEACHING_ASSISTANT", Role::TeachingAssistant),
            ("Teaching Assistant", Role::TeachingAssistant),
            ("Course Builder", Role::ContentDeveloper),
            ("Facilitator", Role::Instructor),
            ("STUDENT", Role::Learner),
        ] {
            assert_eq!(normalize_roles(&[role]), want, "{role}");
        }
        // Not a substring match: a made-up role that contains "student" is not a learner.
        assert_eq!(normalize_roles(&["COURSE:STUDENT_OBSERVER"]), Role::Other);
    }
}
