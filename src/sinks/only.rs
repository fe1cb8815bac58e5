//! A sink's `only:` filter: which active servers it may list. Every given field must match
//! (AND); within a field any listed value may (OR). Without `only.kind` a sink lists the
//! confirmed kinds only (`mcp`, `mcp-auth-required`): `mcp-likely` is never pushed unless
//! asked for.

use crate::fingerprint::Verdict;
use crate::monitor::plan::glob;
use crate::monitor::state::Status;
use crate::store::StoredServer;

/// The kinds a sink lists when `only.kind` is not given.
pub const DEFAULT_KINDS: [Verdict; 2] = [Verdict::Mcp, Verdict::McpAuthRequired];

/// A validated `only:` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Only {
    /// Accepted kinds (never empty).
    pub kinds: Vec<Verdict>,
    /// Accepted health statuses (empty: any). A server never checked is `unknown`.
    pub health: Vec<Status>,
    /// Found by one of these jobs (empty: any).
    pub jobs: Vec<String>,
    /// Offers a tool matching one of these `*` globs (empty: any).
    pub capabilities: Vec<String>,
}

impl Default for Only {
    fn default() -> Self {
        Self {
            kinds: DEFAULT_KINDS.to_vec(),
            health: Vec::new(),
            jobs: Vec::new(),
            capabilities: Vec::new(),
        }
    }
}

impl Only {
    /// Whether `s` passes (its status, active or gone, is not looked at here).
    pub fn matches(&self, s: &StoredServer) -> bool {
        let r = &s.record;
        if r.url.is_none() || !r.kind.is_some_and(|k| self.kinds.contains(&k)) {
            return false;
        }
        if !self.health.is_empty() {
            let status = r.health.as_ref().map_or(Status::Unknown, |h| h.status);
            if !self.health.contains(&status) {
                return false;
            }
        }
        if !self.jobs.is_empty() && !s.jobs.iter().any(|j| self.jobs.contains(j)) {
            return false;
        }
        if !self.capabilities.is_empty()
            && !r
                .tools
                .iter()
                .any(|t| self.capabilities.iter().any(|c| glob(c, &t.name)))
        {
            return false;
        }
        true
    }

    /// One line for `config check`: `kind mcp,mcp-auth-required; job lan`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "kind {}",
            self.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )];
        if !self.health.is_empty() {
            parts.push(format!(
                "health {}",
                self.health
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if !self.jobs.is_empty() {
            parts.push(format!("job {}", self.jobs.join(",")));
        }
        if !self.capabilities.is_empty() {
            parts.push(format!("capability {}", self.capabilities.join(",")));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil;

    #[test]
    fn the_default_lists_confirmed_kinds_only() {
        let only = Only::default();
        let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        assert!(only.matches(&s));
        s.record.kind = Some(Verdict::McpAuthRequired);
        assert!(only.matches(&s));
        s.record.kind = Some(Verdict::McpLikely);
        assert!(!only.matches(&s), "mcp-likely is never pushed unless asked");
        s.record.kind = Some(Verdict::Http);
        assert!(!only.matches(&s));
    }

    #[test]
    fn every_given_field_must_match() {
        let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        s.jobs = vec!["lan".into()];
        let only = Only {
            jobs: vec!["lan".into(), "dmz".into()],
            capabilities: vec!["get_*".into()],
            health: vec![Status::Unknown, Status::Healthy],
            ..Only::default()
        };
        assert!(only.matches(&s), "tools get_forecast, never checked");
        let wrong_job = Only {
            jobs: vec!["dmz".into()],
            ..only.clone()
        };
        assert!(!wrong_job.matches(&s));
        let wrong_tool = Only {
            capabilities: vec!["set_*".into()],
            ..only.clone()
        };
        assert!(!wrong_tool.matches(&s));
        let healthy_only = Only {
            health: vec![Status::Healthy],
            ..only
        };
        assert!(!healthy_only.matches(&s), "never checked is unknown");
        assert_eq!(
            healthy_only.describe(),
            "kind mcp,mcp-auth-required; health healthy; job lan,dmz; capability get_*"
        );
    }
}
