//! Keys from the environment: every `OPENAI_API_KEY*` and `AZURE_OPENAI_API_KEY*` variable
//! becomes one balancer member, named by its variable.
//!
//! Users of several keys export them as `OPENAI_API_KEY_1`, `OPENAI_API_KEY_2`, ... (with
//! `OPENAI_API_PROXY_1`, ... when each key has its own proxy) and expect every key to be used.
//! [`EnvKeys`] reads a set of variables (the process environment, a `.env` file, or any list
//! you give it), finds the keys and their settings, and hands back one [`EnvMember`] per key,
//! which converts into a [`Provider`] of a balanced client.
//!
//! ```no_run
//! # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
//! use lbgpt::env::EnvKeys;
//! use lbgpt::BalancedGpt;
//!
//! // The process environment, then ./.env for what it does not set.
//! let keys = EnvKeys::from_process_env()?;
//! let gpt = BalancedGpt::builder()
//!     .providers(keys.members()?.into_iter().map(|member| {
//!         let limited = member.name() == "OPENAI_API_KEY_1";
//!         let provider = member.into_provider();
//!         if limited { provider.rpm(500) } else { provider }
//!     }))
//!     .build()?;
//! let results = gpt.chat_completion_list(requests).await;
//! for member in gpt.stats() {
//!     println!("{}: {} requests", member.name, member.requests); // "OPENAI_API_KEY_1: ..."
//! }
//! # Ok(()) }
//! ```
//!
//! [`BalancedGpt::from_env`](crate::BalancedGpt::from_env) and
//! [`BalancedGptBuilder::providers_from_env`](crate::BalancedGptBuilder::providers_from_env)
//! do the same in one call.
//!
//! # The variables
//!
//! A *suffix* is empty, or `_` followed by letters, digits and `_` (`_2`, `_EU`, `_eu_1`), or
//! digits possibly followed by letters, digits and `_` (`2`, as in `OPENAI_API_KEY2`).
//!
//! | variable | meaning |
//! |---|---|
//! | `OPENAI_API_KEY<suffix>` | an OpenAI key (or a key of an OpenAI-compatible server): one member |
//! | `OPENAI_API_PROXY<suffix>`, else `OPENAI_API_PROXY` | its proxy: `http://`, `https://`, `socks5://` or `socks5h://` URL (credentials as `user:pass@` allowed), or `none` for no proxy at all; unset: the system proxy settings (`HTTPS_PROXY`, ...) |
//! | `OPENAI_BASE_URL<suffix>`, else `OPENAI_BASE_URL` | its API base URL (`http(s)://`); unset: `https://api.openai.com/v1` |
//! | `AZURE_OPENAI_API_KEY<suffix>` | an Azure OpenAI resource key (sent as `api-key`): one member |
//! | `AZURE_OPENAI_ENDPOINT<suffix>`, else `AZURE_OPENAI_ENDPOINT` | its resource endpoint (`http(s)://`); required |
//! | `AZURE_OPENAI_DEPLOYMENTS<suffix>`, else `AZURE_OPENAI_DEPLOYMENTS` | its model -> deployment map, `MODEL=DEPLOYMENT` pairs separated by commas (`gpt-4o-mini=mini-eu,gpt-4o=gpt4o-prod`); required |
//! | `AZURE_OPENAI_API_VERSION<suffix>`, else `AZURE_OPENAI_API_VERSION`, else `OPENAI_API_VERSION` | its `api-version`; unset: [`DEFAULT_API_VERSION`](crate::azure::DEFAULT_API_VERSION) |
//! | `AZURE_OPENAI_PROXY<suffix>`, else `AZURE_OPENAI_PROXY` | its proxy, as for OpenAI |
//!
//! A member's setting comes from the variable with the member's own suffix when that is set,
//! else from the variable without a suffix, which so serves every key of its kind.
//!
//! Members are named by their key variable (`OPENAI_API_KEY_2`), never by the key, and come in
//! a fixed order: sorted by name, numbers within names compared as numbers
//! (`AZURE_OPENAI_API_KEY`, ..., `OPENAI_API_KEY`, `OPENAI_API_KEY_1`, `OPENAI_API_KEY_2`,
//! `OPENAI_API_KEY_10`).
//!
//! # Errors
//!
//! Nothing is dropped silently; each problem is an [`EnvError`] naming the variable (never its
//! value: keys, and URLs that may hold credentials, are not quoted):
//!
//! - a variable that is set but empty (or blank), or not valid Unicode;
//! - a name that starts with a key or setting prefix but has no valid suffix
//!   (`OPENAI_API_KEYS`, `OPENAI_API_KEY_`): it is neither a key nor unrelated, so it is refused
//!   rather than guessed at;
//! - a setting without its key: `OPENAI_API_PROXY_3` without `OPENAI_API_KEY_3`, or
//!   `AZURE_OPENAI_ENDPOINT` when no `AZURE_OPENAI_API_KEY*` is set;
//! - a malformed URL, an Azure key without an endpoint or without deployments, a malformed
//!   deployment map.
//!
//! # `.env` files
//!
//! [`EnvKeys::with_dotenv_file`] reads a `.env` file (parsed by the `dotenvy` crate: `NAME=value`
//! lines, `export NAME=value`, single- and double-quoted values, `#` comments, `$NAME` and
//! `${NAME}` substitution) into the set without replacing a variable that is already in it,
//! even an empty one. Within one file the first definition of a name wins. The process
//! environment itself is never changed. Substitutions refer to earlier lines of the file and to
//! the process environment (not to the variables given to [`EnvKeys::from_vars`]).
//!
//! [`EnvKeys::from_process_env_and_dotenv_files`] reads several: the process environment
//! first, then each file in the order given, a file filling in only what nothing before it set
//! (the `lbgpt` CLI reads the `.env` next to its config file, then `./.env`). A file reached by
//! two paths is read once; [`EnvKeys::dotenv_files`] lists the files looked for.
//!
//! # URLs in output
//!
//! [`redact_url`] shows a URL without the credentials of its authority and without its query
//! and fragment (a key in `?key=...`). A base URL or endpoint with a query or fragment is an
//! error ([`api_url_problem`]): endpoint paths are appended to it, so the query could never be
//! sent as meant.

use crate::{BalancedGpt, BalancedGptBuilder, Provider};
use lbgpt_azure::AzureConfig;
use lbgpt_core::Error;
use lbgpt_openai::OpenAiConfig;
use secrecy::{ExposeSecret, SecretString};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The prefix of OpenAI key variables.
pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// The prefix of OpenAI proxy variables.
pub const OPENAI_API_PROXY: &str = "OPENAI_API_PROXY";
/// The prefix of OpenAI base URL variables.
pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
/// The prefix of Azure OpenAI key variables.
pub const AZURE_OPENAI_API_KEY: &str = "AZURE_OPENAI_API_KEY";
/// The prefix of Azure OpenAI endpoint variables.
pub const AZURE_OPENAI_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
/// The prefix of Azure OpenAI deployment map variables.
pub const AZURE_OPENAI_DEPLOYMENTS: &str = "AZURE_OPENAI_DEPLOYMENTS";
/// The prefix of Azure OpenAI api-version variables.
pub const AZURE_OPENAI_API_VERSION: &str = "AZURE_OPENAI_API_VERSION";
/// The prefix of Azure OpenAI proxy variables.
pub const AZURE_OPENAI_PROXY: &str = "AZURE_OPENAI_PROXY";
/// The api-version variable the official OpenAI SDKs read for Azure: the last fallback of an
/// Azure member's api-version (only this exact name; it has no suffixed form).
pub const OPENAI_API_VERSION: &str = "OPENAI_API_VERSION";
/// The file [`EnvKeys::from_process_env`] reads from the working directory when present.
pub const DOTENV_FILE: &str = ".env";
/// The proxy value that turns off every proxy, the system settings included.
pub const NO_PROXY: &str = "none";

/// The proxy URL schemes accepted.
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];
/// The base URL and endpoint schemes accepted.
const URL_SCHEMES: [&str; 2] = ["http", "https"];

/// Which kind of provider a key variable is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnvKind {
    /// `OPENAI_API_KEY*`: OpenAI, or an OpenAI-compatible server (with `OPENAI_BASE_URL*`).
    OpenAi,
    /// `AZURE_OPENAI_API_KEY*`: an Azure OpenAI resource.
    Azure,
}

impl EnvKind {
    /// Both kinds.
    pub const ALL: [EnvKind; 2] = [EnvKind::Azure, EnvKind::OpenAi];

    /// The prefix of its key variables: `OPENAI_API_KEY` or `AZURE_OPENAI_API_KEY`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            EnvKind::OpenAi => OPENAI_API_KEY,
            EnvKind::Azure => AZURE_OPENAI_API_KEY,
        }
    }

    /// `"openai"` or `"azure"`, as [`Provider::kind`] says.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::OpenAi => crate::caching::KIND_OPENAI,
            EnvKind::Azure => crate::caching::KIND_AZURE,
        }
    }

    /// The setting variables of this kind, each with the role it plays.
    fn settings(self) -> &'static [(&'static str, Role)] {
        match self {
            EnvKind::OpenAi => &[
                (OPENAI_API_PROXY, Role::Proxy),
                (OPENAI_BASE_URL, Role::Url),
            ],
            EnvKind::Azure => &[
                (AZURE_OPENAI_ENDPOINT, Role::Url),
                (AZURE_OPENAI_DEPLOYMENTS, Role::Deployments),
                (AZURE_OPENAI_API_VERSION, Role::ApiVersion),
                (AZURE_OPENAI_PROXY, Role::Proxy),
            ],
        }
    }

    /// The prefix of its variables for `role`.
    fn prefix_of(self, role: Role) -> Option<&'static str> {
        self.settings()
            .iter()
            .find(|(_, r)| *r == role)
            .map(|(prefix, _)| *prefix)
    }
}

impl fmt::Display for EnvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a setting variable configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Proxy,
    Url,
    ApiVersion,
    Deployments,
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarOrigin {
    /// The process environment, or the list given to [`EnvKeys::from_vars`].
    Environment,
    /// A `.env` file.
    DotEnv(PathBuf),
}

impl fmt::Display for VarOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarOrigin::Environment => f.write_str("environment"),
            VarOrigin::DotEnv(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why keys could not be taken from the environment. Every variant names the variable at
/// fault; none holds a key or a URL (which may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvError {
    /// A variable that is read is set but empty or blank.
    Empty {
        /// The variable.
        variable: String,
        /// Where it was set.
        origin: VarOrigin,
    },
    /// A variable that is read holds bytes that are not valid Unicode.
    NotUnicode {
        /// The variable.
        variable: String,
    },
    /// A name that starts with a key or setting prefix but has no valid suffix after it
    /// (`OPENAI_API_KEYS`, `OPENAI_API_KEY_`).
    UnrecognisedName {
        /// The variable.
        variable: String,
        /// The prefix it starts with.
        prefix: &'static str,
    },
    /// A setting (proxy, base URL, endpoint, ...) for a key that is not set.
    WithoutKey {
        /// The setting's variable.
        variable: String,
        /// The key variable it belongs to; for a setting without suffix, the key prefix
        /// (no key of that kind is set at all).
        key_variable: String,
    },
    /// A URL variable that does not hold a URL of an accepted scheme.
    InvalidUrl {
        /// The variable.
        variable: String,
        /// What was expected, e.g. `a URL starting with http:// or https://`.
        expected: String,
        /// What is wrong with the value, without quoting it (see [`url_problem`]).
        problem: String,
    },
    /// An Azure key without an endpoint.
    MissingEndpoint {
        /// The key variable.
        key_variable: String,
        /// The variables that were looked at.
        looked_at: Vec<String>,
    },
    /// An Azure key without a deployment map.
    MissingDeployments {
        /// The key variable.
        key_variable: String,
        /// The variables that were looked at.
        looked_at: Vec<String>,
    },
    /// A deployment map that is not `MODEL=DEPLOYMENT[,MODEL=DEPLOYMENT...]`.
    InvalidDeployments {
        /// The variable.
        variable: String,
        /// What is wrong (quotes the entry at fault; deployment names are not secret).
        problem: String,
    },
    /// A key pattern that is not `OPENAI_API_KEY...` or `AZURE_OPENAI_API_KEY...`, optionally
    /// ending in `*`.
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        problem: String,
    },
    /// No key variable is set (that matches the pattern, when there is one).
    NoKeys {
        /// The pattern, if the search had one.
        pattern: Option<String>,
    },
    /// A `.env` file could not be read or parsed.
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The line at fault, when known.
        line: Option<usize>,
        /// What is wrong (never the line's text).
        problem: String,
    },
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Empty { variable, origin } => match origin {
                VarOrigin::Environment => write!(f, "`{variable}` is set but empty"),
                VarOrigin::DotEnv(path) => {
                    write!(f, "`{variable}` is set but empty (in {})", path.display())
                }
            },
            EnvError::NotUnicode { variable } => {
                write!(f, "`{variable}` does not hold valid Unicode text")
            }
            EnvError::UnrecognisedName { variable, prefix } => write!(
                f,
                "`{variable}` starts with `{prefix}` but is not a variable lbgpt knows: after \
                 `{prefix}` comes nothing, `_` and a suffix, or digits (e.g. `{prefix}_2`); \
                 rename or unset it"
            ),
            EnvError::WithoutKey {
                variable,
                key_variable,
            } => {
                if key_variable.ends_with('*') {
                    write!(
                        f,
                        "`{variable}` is set, but no `{key_variable}` variable is: a setting \
                         without a key"
                    )
                } else {
                    write!(
                        f,
                        "`{variable}` is set, but `{key_variable}` is not: a setting without \
                         its key"
                    )
                }
            }
            EnvError::InvalidUrl {
                variable,
                expected,
                problem,
            } => write!(f, "`{variable}` is not {expected}: {problem}"),
            EnvError::MissingEndpoint {
                key_variable,
                looked_at,
            } => write!(
                f,
                "`{key_variable}` has no endpoint: set {} (e.g. \
                 https://my-resource.openai.azure.com)",
                either(looked_at)
            ),
            EnvError::MissingDeployments {
                key_variable,
                looked_at,
            } => write!(
                f,
                "`{key_variable}` has no deployments: set {} to MODEL=DEPLOYMENT pairs \
                 separated by commas (e.g. gpt-4o-mini=my-mini-deployment)",
                either(looked_at)
            ),
            EnvError::InvalidDeployments { variable, problem } => {
                write!(f, "`{variable}`: {problem}")
            }
            EnvError::InvalidPattern { pattern, problem } => {
                write!(f, "key pattern \"{pattern}\": {problem}")
            }
            EnvError::NoKeys { pattern: None } => write!(
                f,
                "no `{OPENAI_API_KEY}*` or `{AZURE_OPENAI_API_KEY}*` variable is set"
            ),
            EnvError::NoKeys {
                pattern: Some(pattern),
            } => write!(f, "no variable matching `{pattern}` is set"),
            EnvError::DotEnv {
                path,
                line,
                problem,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ", line {line}")?;
                }
                write!(f, ": {problem}")
            }
        }
    }
}

/// "`A` or `B`" for error messages.
fn either(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    quoted.join(" or ")
}

impl std::error::Error for EnvError {}

impl From<EnvError> for Error {
    /// An [`Error::Config`] with the same text.
    fn from(err: EnvError) -> Self {
        Error::Config(err.to_string())
    }
}

/// One variable's value: `None` when it is not valid Unicode.
#[derive(Clone)]
struct Var {
    value: Option<String>,
    origin: VarOrigin,
}

/// A set of variables to find keys in: the process environment and `./.env`
/// ([`EnvKeys::from_process_env`]), or any list ([`EnvKeys::from_vars`]) plus `.env` files
/// ([`EnvKeys::with_dotenv_file`]).
///
/// Its `Debug` shows the names of the variables this module reads, never a value.
///
/// ```
/// use lbgpt::env::{EnvKeys, EnvKind};
///
/// let keys = EnvKeys::from_vars([
///     ("OPENAI_API_KEY_2", "sk-second-key-0000000002"),
///     ("OPENAI_API_KEY_10", "sk-tenth-key-00000000010"),
///     ("OPENAI_API_KEY_1", "sk-first-key-000000000001"),
///     ("OPENAI_API_PROXY_2", "http://proxy.internal:3128"),
///     ("HOME", "/home/me"),
/// ]);
/// let members = keys.members()?;
/// let names: Vec<&str> = members.iter().map(|m| m.name()).collect();
/// assert_eq!(names, ["OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "OPENAI_API_KEY_10"]);
/// assert_eq!(members[1].kind(), EnvKind::OpenAi);
/// assert_eq!(members[1].proxy().map(|p| p.variable.as_str()), Some("OPENAI_API_PROXY_2"));
/// assert!(members[0].proxy().is_none());
/// assert!(!format!("{keys:?} {members:?}").contains("sk-first"));
/// # Ok::<(), lbgpt::env::EnvError>(())
/// ```
#[derive(Clone, Default)]
pub struct EnvKeys {
    vars: BTreeMap<String, Var>,
    /// The `.env` files looked for, in the order they were read.
    dotenv_files: Vec<PathBuf>,
}

impl EnvKeys {
    /// The variables `vars` (name, value); a later pair of the same name replaces an earlier
    /// one. Nothing else is read: neither the process environment nor any `.env` file.
    pub fn from_vars<I, K, V>(vars: I) -> EnvKeys
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(name, value)| {
                let var = Var {
                    value: Some(value.into()),
                    origin: VarOrigin::Environment,
                };
                (name.into(), var)
            })
            .collect();
        EnvKeys {
            vars,
            dotenv_files: Vec::new(),
        }
    }

    /// The process environment, then `./.env` (in the working directory) when that file
    /// exists, for the variables the environment does not set. The environment is only read,
    /// never changed.
    ///
    /// Fails when `./.env` exists but cannot be read or parsed.
    pub fn from_process_env() -> Result<EnvKeys, EnvError> {
        EnvKeys::from_process_env_and_dotenv_files([Path::new(DOTENV_FILE)])
    }

    /// The process environment, then each of `dotenv_files` that exists, in order: a file
    /// adds only the variables that neither the environment nor an earlier file set (the
    /// first place that sets a variable wins, even with an empty value). A file named twice
    /// (the same file by another path, e.g. `proj/.env` when the working directory is
    /// `proj`) is read once. The environment is only read, never changed.
    ///
    /// Fails when a file exists but cannot be read or parsed.
    pub fn from_process_env_and_dotenv_files<I, P>(dotenv_files: I) -> Result<EnvKeys, EnvError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut vars = BTreeMap::new();
        for (name, value) in std::env::vars_os() {
            // A name that is not Unicode cannot be one this module reads.
            let Ok(name) = name.into_string() else {
                continue;
            };
            let var = Var {
                value: value.into_string().ok(),
                origin: VarOrigin::Environment,
            };
            vars.insert(name, var);
        }
        let mut keys = EnvKeys {
            vars,
            dotenv_files: Vec::new(),
        };
        for path in dotenv_files {
            keys = keys.read_dotenv(path.as_ref(), true)?;
        }
        Ok(keys)
    }

    /// Adds the variables of the `.env` file at `path` that are not in the set yet (a variable
    /// already set wins, even when empty; within the file the first definition wins).
    ///
    /// Fails when the file cannot be read (a missing file included) or parsed; the error
    /// names the file and the line, never the line's text.
    pub fn with_dotenv_file(self, path: impl AsRef<Path>) -> Result<EnvKeys, EnvError> {
        self.read_dotenv(path.as_ref(), false)
    }

    /// The `.env` files looked for, in the order they were read (each once; those that did
    /// not exist included), e.g. to say where a variable was searched for.
    pub fn dotenv_files(&self) -> &[PathBuf] {
        &self.dotenv_files
    }

    fn read_dotenv(mut self, path: &Path, optional: bool) -> Result<EnvKeys, EnvError> {
        if self.dotenv_files.iter().any(|read| same_file(read, path)) {
            return Ok(self);
        }
        self.dotenv_files.push(path.to_owned());
        let dotenv_error = |line: Option<usize>, problem: String| EnvError::DotEnv {
            path: path.to_owned(),
            line,
            problem,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if optional && err.kind() == std::io::ErrorKind::NotFound => return Ok(self),
            Err(err) => {
                let problem = match err.kind() {
                    std::io::ErrorKind::NotFound => "file not found".to_owned(),
                    _ => format!("cannot be read: {err}"),
                };
                return Err(dotenv_error(None, problem));
            }
        };
        let text = String::from_utf8(text)
            .map_err(|_| dotenv_error(None, "is not valid UTF-8 text".to_owned()))?;
        let origin = VarOrigin::DotEnv(path.to_owned());
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((name, value)) => {
                    self.vars.entry(name).or_insert_with(|| Var {
                        value: Some(value),
                        origin: origin.clone(),
                    });
                }
                Err(dotenvy::Error::LineParse(line, index)) => {
                    let (number, problem) = describe_parse_error(&text, &line, index);
                    return Err(dotenv_error(number, problem));
                }
                Err(dotenvy::Error::Io(err)) => {
                    return Err(dotenv_error(None, format!("cannot be read: {err}")));
                }
                Err(_) => {
                    return Err(dotenv_error(
                        None,
                        "a `$NAME` substitution cannot be resolved".to_owned(),
                    ));
                }
            }
        }
        Ok(self)
    }

    /// The value of `name`, if it is set (and valid Unicode).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).and_then(|var| var.value.as_deref())
    }

    /// Where the value of `name` came from, if it is set.
    pub fn origin(&self, name: &str) -> Option<&VarOrigin> {
        self.vars.get(name).map(|var| &var.origin)
    }

    /// Every member of both kinds, in name order ([module docs](self)). An empty list when no
    /// key variable is set.
    pub fn members(&self) -> Result<Vec<EnvMember>, EnvError> {
        let mut members = Vec::new();
        for kind in EnvKind::ALL {
            members.extend(self.discover(kind, None)?);
        }
        members.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        Ok(members)
    }

    /// The members whose key variable matches `pattern`, in name order; an empty list when
    /// none does. Only `pattern`'s kind is looked at: a stray Azure setting does not stop
    /// `OPENAI_API_KEY*`.
    pub fn members_matching(&self, pattern: &KeyPattern) -> Result<Vec<EnvMember>, EnvError> {
        self.discover(pattern.kind, Some(pattern))
    }

    /// Every member of both kinds as a [`Provider`] (no limits: add them with
    /// [`Provider::rpm`] / [`Provider::tpm`], or use [`members`](Self::members)).
    ///
    /// Fails with [`EnvError::NoKeys`] when no key variable is set.
    pub fn providers(&self) -> Result<Vec<Provider>, EnvError> {
        let members = self.members()?;
        if members.is_empty() {
            return Err(EnvError::NoKeys { pattern: None });
        }
        Ok(members.into_iter().map(EnvMember::into_provider).collect())
    }

    /// The members of `kind`, restricted to `pattern` when given, after checking every
    /// variable of that kind.
    fn discover(
        &self,
        kind: EnvKind,
        pattern: Option<&KeyPattern>,
    ) -> Result<Vec<EnvMember>, EnvError> {
        let key_prefix = kind.key_prefix();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for name in self.vars.keys() {
            if let Some(suffix) = name.strip_prefix(key_prefix) {
                if !is_suffix(suffix) {
                    return Err(EnvError::UnrecognisedName {
                        variable: name.clone(),
                        prefix: key_prefix,
                    });
                }
                keys.push((name, suffix));
            }
        }
        for (prefix, _) in kind.settings() {
            for name in self.vars.keys() {
                let Some(suffix) = name.strip_prefix(prefix) else {
                    continue;
                };
                if !is_suffix(suffix) {
                    return Err(EnvError::UnrecognisedName {
                        variable: name.clone(),
                        prefix,
                    });
                }
                if suffix.is_empty() {
                    if keys.is_empty() {
                        return Err(EnvError::WithoutKey {
                            variable: name.clone(),
                            key_variable: format!("{key_prefix}*"),
                        });
                    }
                } else if !keys.iter().any(|(_, key_suffix)| *key_suffix == suffix) {
                    return Err(EnvError::WithoutKey {
                        variable: name.clone(),
                        key_variable: format!("{key_prefix}{suffix}"),
                    });
                }
            }
        }
        keys.retain(|(name, _)| pattern.is_none_or(|pattern| pattern.matches(name)));
        keys.sort_by(|a, b| natural_cmp(a.0, b.0));
        keys.into_iter()
            .map(|(name, suffix)| self.member(kind, name, suffix))
            .collect()
    }

    /// The member of key variable `name` (of `kind`, with `suffix`).
    fn member(&self, kind: EnvKind, name: &str, suffix: &str) -> Result<EnvMember, EnvError> {
        let key = self.required(name)?;
        let key_origin = self
            .vars
            .get(name)
            .map_or(VarOrigin::Environment, |v| v.origin.clone());
        let proxy = self.setting(kind, Role::Proxy, suffix)?;
        if let Some(proxy) = &proxy {
            if proxy.value != NO_PROXY {
                check_url(&proxy.variable, &proxy.value, &PROXY_SCHEMES, true)?;
            }
        }
        let url = self.setting(kind, Role::Url, suffix)?;
        if let Some(url) = &url {
            check_url(&url.variable, &url.value, &URL_SCHEMES, false)?;
            if let Some(problem) = query_problem(&url.value) {
                return Err(EnvError::InvalidUrl {
                    variable: url.variable.clone(),
                    expected: "a URL of the API without query or fragment".to_owned(),
                    problem,
                });
            }
        }
        let mut member = EnvMember {
            name: name.to_owned(),
            kind,
            key: SecretString::from(key.to_owned()),
            key_origin,
            proxy,
            url,
            api_version: None,
            deployments: None,
        };
        if kind == EnvKind::Azure {
            if member.url.is_none() {
                return Err(EnvError::MissingEndpoint {
                    key_variable: name.to_owned(),
                    looked_at: candidates(AZURE_OPENAI_ENDPOINT, suffix),
                });
            }
            let Some(deployments) = self.setting(kind, Role::Deployments, suffix)? else {
                return Err(EnvError::MissingDeployments {
                    key_variable: name.to_owned(),
                    looked_at: candidates(AZURE_OPENAI_DEPLOYMENTS, suffix),
                });
            };
            let map = parse_deployments(&deployments.variable, &deployments.value)?;
            member.deployments = Some((deployments, map));
            member.api_version = match self.setting(kind, Role::ApiVersion, suffix)? {
                Some(version) => Some(version),
                None => self.optional(OPENAI_API_VERSION)?,
            };
        }
        Ok(member)
    }

    /// The setting of `role` for the member with `suffix`: its own variable, else the one
    /// without suffix.
    fn setting(
        &self,
        kind: EnvKind,
        role: Role,
        suffix: &str,
    ) -> Result<Option<EnvSetting>, EnvError> {
        let Some(prefix) = kind.prefix_of(role) else {
            return Ok(None);
        };
        for name in candidates(prefix, suffix) {
            if let Some(setting) = self.optional(&name)? {
                return Ok(Some(setting));
            }
        }
        Ok(None)
    }

    /// `name`'s value, trimmed, if set; an error when it is set but blank or not Unicode.
    fn optional(&self, name: &str) -> Result<Option<EnvSetting>, EnvError> {
        let Some(var) = self.vars.get(name) else {
            return Ok(None);
        };
        let value = self.required(name)?;
        Ok(Some(EnvSetting {
            variable: name.to_owned(),
            value: value.to_owned(),
            origin: var.origin.clone(),
        }))
    }

    /// `name`'s value, trimmed; an error when it is blank or not Unicode (it is set).
    fn required(&self, name: &str) -> Result<&str, EnvError> {
        let var = self.vars.get(name);
        match var.map(|var| var.value.as_deref().map(str::trim)) {
            Some(Some(value)) if !value.is_empty() => Ok(value),
            Some(None) => Err(EnvError::NotUnicode {
                variable: name.to_owned(),
            }),
            _ => Err(EnvError::Empty {
                variable: name.to_owned(),
                origin: var.map_or(VarOrigin::Environment, |v| v.origin.clone()),
            }),
        }
    }
}

impl fmt::Debug for EnvKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read: Vec<(&str, &VarOrigin)> = self
            .vars
            .iter()
            .filter(|(name, _)| is_read_by_this_module(name))
            .map(|(name, var)| (name.as_str(), &var.origin))
            .collect();
        f.debug_struct("EnvKeys")
            .field("variables", &read)
            .field("others", &(self.vars.len() - read.len()))
            .field("dotenv_files", &self.dotenv_files)
            .finish()
    }
}

/// Whether `name` starts with one of the prefixes this module reads.
fn is_read_by_this_module(name: &str) -> bool {
    name == OPENAI_API_VERSION
        || EnvKind::ALL.iter().any(|kind| {
            name.starts_with(kind.key_prefix())
                || kind
                    .settings()
                    .iter()
                    .any(|(prefix, _)| name.starts_with(prefix))
        })
}

/// `PREFIX<suffix>`, then `PREFIX` (once when the suffix is empty).
fn candidates(prefix: &str, suffix: &str) -> Vec<String> {
    if suffix.is_empty() {
        vec![prefix.to_owned()]
    } else {
        vec![format!("{prefix}{suffix}"), prefix.to_owned()]
    }
}

/// Whether `suffix` may follow a prefix: empty, `_` and at least one more character, or a
/// digit first; letters, digits and `_` only.
fn is_suffix(suffix: &str) -> bool {
    let Some(first) = suffix.chars().next() else {
        return true;
    };
    let starts_right = first.is_ascii_digit() || (first == '_' && suffix.len() > 1);
    starts_right
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks that `value` is a URL of one of `schemes` ([`url_problem`]).
fn check_url(
    variable: &str,
    value: &str,
    schemes: &[&str],
    none_allowed: bool,
) -> Result<(), EnvError> {
    let Some(problem) = url_problem(value, schemes) else {
        return Ok(());
    };
    let listed: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
    let mut expected = format!("a URL starting with {}", listed.join(", "));
    if none_allowed {
        expected.push_str(&format!(" (or `{NO_PROXY}` for no proxy)"));
    }
    Err(EnvError::InvalidUrl {
        variable: variable.to_owned(),
        expected,
        problem,
    })
}

/// What is wrong with `url` as a URL of one of `schemes` (lower case, e.g. `["http",
/// "https"]`), or `None` when it is usable: no blanks, an accepted scheme, and an authority of
/// an optional `user:password@`, a host (a name, an IPv4 address or a bracketed IPv6 address)
/// and an optional port from 0 to 65535.
///
/// The answer never quotes the URL, which may hold credentials (`user:password@`, a key in
/// the query), so it can go into an error message as it is.
///
/// ```
/// use lbgpt::env::url_problem;
///
/// assert_eq!(url_problem("http://me:s3cret@proxy.internal:3128", &["http", "https"]), None);
/// assert_eq!(url_problem("https://[::1]:8443/v1", &["http", "https"]), None);
/// assert_eq!(
///     url_problem("http://me:s3cret@", &["http"]).as_deref(),
///     Some("it has no host after `://`")
/// );
/// assert_eq!(
///     url_problem("http://proxy:99999", &["http"]).as_deref(),
///     Some("its port is not a number from 0 to 65535")
/// );
/// assert!(url_problem("ftp://proxy", &["http"]).is_some_and(|p| !p.contains("proxy")));
/// ```
pub fn url_problem(url: &str, schemes: &[&str]) -> Option<String> {
    if url.chars().any(char::is_whitespace) {
        return Some("it contains a blank".to_owned());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("it has no scheme: nothing like `https://` at the start".to_owned());
    };
    if !schemes.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Some("its scheme is not an accepted one".to_owned());
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((address, after)) if address.parse::<std::net::Ipv6Addr>().is_ok() => {
                match after {
                    "" => (address, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (address, Some(port)),
                        None => return Some("its host is followed by more than a port".to_owned()),
                    },
                }
            }
            _ => return Some("its host is not a valid bracketed IPv6 address".to_owned()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Some("it has no host after `://`".to_owned());
    }
    let host_char = |c: char| c.is_alphanumeric() || "-._~%".contains(c);
    if !host_port.starts_with('[') && !host.chars().all(host_char) {
        return Some("its host has a character a host name cannot have".to_owned());
    }
    if let Some(port) = port {
        if !port.is_empty() && port.parse::<u16>().is_err() {
            return Some("its port is not a number from 0 to 65535".to_owned());
        }
    }
    None
}

/// What is wrong with `url` as the base of API requests (an OpenAI `base_url`, an Azure
/// endpoint), or `None` when it is usable: [`url_problem`] with `http`/`https`, and no query
/// (`?...`) or fragment (`#...`), since endpoint paths such as `/chat/completions` are
/// appended to it (a query would end up before them, so a key there is never sent as meant).
///
/// Like [`url_problem`], the answer never quotes the URL.
///
/// ```
/// use lbgpt::env::api_url_problem;
///
/// assert_eq!(api_url_problem("https://gateway.internal/openai/v1"), None);
/// let problem = api_url_problem("https://gateway.internal/v1?key=s3cret").expect("a query");
/// assert!(problem.contains("query") && !problem.contains("s3cret"));
/// assert!(api_url_problem("ftp://gateway.internal").is_some());
/// ```
pub fn api_url_problem(url: &str) -> Option<String> {
    url_problem(url, &URL_SCHEMES).or_else(|| query_problem(url))
}

/// Whether `url` has a query or a fragment, said without quoting it.
fn query_problem(url: &str) -> Option<String> {
    let what = match (url.contains('?'), url.contains('#')) {
        (false, false) => return None,
        (true, _) => "a query after `?`",
        (false, true) => "a fragment after `#`",
    };
    Some(format!(
        "it has {what}, but endpoint paths such as `/chat/completions` are appended to this \
         URL, so it must end with its path; send a key in a header instead"
    ))
}

/// Parses `MODEL=DEPLOYMENT[,MODEL=DEPLOYMENT...]`.
fn parse_deployments(variable: &str, value: &str) -> Result<BTreeMap<String, String>, EnvError> {
    let invalid = |problem: String| EnvError::InvalidDeployments {
        variable: variable.to_owned(),
        problem,
    };
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((model, deployment)) = entry.split_once('=') else {
            return Err(invalid(format!(
                "\"{entry}\" is not MODEL=DEPLOYMENT (pairs are separated by commas)"
            )));
        };
        let (model, deployment) = (model.trim(), deployment.trim());
        if model.is_empty() || deployment.is_empty() {
            return Err(invalid(format!(
                "\"{entry}\" needs a model before `=` and a deployment after it"
            )));
        }
        if map
            .insert(model.to_owned(), deployment.to_owned())
            .is_some()
        {
            return Err(invalid(format!("model \"{model}\" is mapped twice")));
        }
    }
    if map.is_empty() {
        return Err(invalid(
            "holds no MODEL=DEPLOYMENT pair (e.g. gpt-4o-mini=my-mini-deployment)".to_owned(),
        ));
    }
    Ok(map)
}

/// Whether `a` and `b` name the same file: equal paths, or the same file once resolved.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// The line number of a dotenvy parse error and a description that quotes no value.
fn describe_parse_error(text: &str, line: &str, index: usize) -> (Option<usize>, String) {
    let number = text
        .find(line.lines().next().unwrap_or(line))
        .filter(|_| !line.is_empty())
        .map(|offset| text[..offset].matches('\n').count() + 1);
    let name = line
        .trim_start()
        .trim_start_matches("export ")
        .split('=')
        .next()
        .map(str::trim)
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    let problem = match name {
        Some(name) => format!(
            "cannot parse the definition of `{name}` (at character {})",
            index + 1
        ),
        None => format!("cannot parse the line (at character {})", index + 1),
    };
    (number, problem)
}

/// Orders names as text, except that runs of digits compare as numbers and come before any
/// other character: `KEY` < `KEY2` < `KEY_1` < `KEY_2` < `KEY_10`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (la, lb) = (digits(a), digits(b));
                let trim = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
                let (na, nb) = (&a[trim(&a[..la])..la], &b[trim(&b[..lb])..lb]);
                let order = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(nb))
                    .then_with(|| la.cmp(&lb));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (&a[la..], &b[lb..]);
            }
            (Some(x), Some(_)) if x.is_ascii_digit() => return Ordering::Less,
            (Some(_), Some(y)) if y.is_ascii_digit() => return Ordering::Greater,
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

/// Which key variables to take: one name (`OPENAI_API_KEY_2`) or every name starting with a
/// prefix (`OPENAI_API_KEY*`, `AZURE_OPENAI_API_KEY_EU*`).
///
/// ```
/// use lbgpt::env::{EnvKind, KeyPattern};
///
/// let pattern: KeyPattern = "OPENAI_API_KEY*".parse()?;
/// assert_eq!(pattern.kind(), EnvKind::OpenAi);
/// assert!(pattern.matches("OPENAI_API_KEY_7"));
/// assert!(!pattern.matches("AZURE_OPENAI_API_KEY"));
/// assert!("HOME".parse::<KeyPattern>().is_err());
/// # Ok::<(), lbgpt::env::EnvError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    text: String,
    body: String,
    wildcard: bool,
    kind: EnvKind,
}

impl KeyPattern {
    /// Every key variable of `kind`: `OPENAI_API_KEY*` or `AZURE_OPENAI_API_KEY*`.
    pub fn all(kind: EnvKind) -> KeyPattern {
        KeyPattern {
            text: format!("{}*", kind.key_prefix()),
            body: kind.key_prefix().to_owned(),
            wildcard: true,
            kind,
        }
    }

    /// Parses `NAME` (exactly that key variable) or `PREFIX*` (every key variable starting
    /// with `PREFIX`), where the name or prefix starts with `OPENAI_API_KEY` or
    /// `AZURE_OPENAI_API_KEY`.
    pub fn parse(text: &str) -> Result<KeyPattern, EnvError> {
        let text = text.trim();
        let invalid = |problem: &str| EnvError::InvalidPattern {
            pattern: text.to_owned(),
            problem: problem.to_owned(),
        };
        let (body, wildcard) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(
                "expected a variable name of letters, digits and `_`, optionally ending in `*`",
            ));
        }
        let kind = if body.starts_with(AZURE_OPENAI_API_KEY) {
            EnvKind::Azure
        } else if body.starts_with(OPENAI_API_KEY) {
            EnvKind::OpenAi
        } else {
            return Err(invalid(&format!(
                "must start with `{OPENAI_API_KEY}` or `{AZURE_OPENAI_API_KEY}`"
            )));
        };
        let suffix = &body[kind.key_prefix().len()..];
        let suffix_ok = if wildcard {
            suffix.is_empty() || suffix.starts_with(|c: char| c == '_' || c.is_ascii_digit())
        } else {
            is_suffix(suffix)
        };
        if !suffix_ok {
            return Err(invalid(&format!(
                "after `{}` comes nothing, `_` and a suffix, or digits",
                kind.key_prefix()
            )));
        }
        Ok(KeyPattern {
            text: text.to_owned(),
            body: body.to_owned(),
            wildcard,
            kind,
        })
    }

    /// The kind of the variables it matches.
    pub fn kind(&self) -> EnvKind {
        self.kind
    }

    /// Whether the key variable `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        if self.wildcard {
            name.starts_with(&self.body)
        } else {
            name == self.body
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for KeyPattern {
    type Err = EnvError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyPattern::parse(text)
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A setting read from a variable: which variable, its value (trimmed) and where it was set.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvSetting {
    /// The variable it was read from (the member's own, or the one without suffix).
    pub variable: String,
    /// Its value, trimmed.
    pub value: String,
    /// Where the variable was set.
    pub origin: VarOrigin,
}

impl fmt::Debug for EnvSetting {
    /// Shows URLs with their credentials hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSetting")
            .field("variable", &self.variable)
            .field("value", &redact_url(&self.value))
            .field("origin", &self.origin)
            .finish()
    }
}

/// One key found in the environment, with its settings: a balancer member named by its key
/// variable. Converts into a [`Provider`] ([`into_provider`](Self::into_provider), `From`),
/// an [`OpenAiConfig`] or an [`AzureConfig`].
///
/// `Debug` never shows the key, nor credentials in a proxy URL.
#[derive(Clone)]
pub struct EnvMember {
    name: String,
    kind: EnvKind,
    key: SecretString,
    key_origin: VarOrigin,
    proxy: Option<EnvSetting>,
    url: Option<EnvSetting>,
    api_version: Option<EnvSetting>,
    deployments: Option<(EnvSetting, BTreeMap<String, String>)>,
}

impl EnvMember {
    /// Its name: the key variable, e.g. `OPENAI_API_KEY_2`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// OpenAI (or compatible) or Azure.
    pub fn kind(&self) -> EnvKind {
        self.kind
    }

    /// The key (trimmed). Expose it only to send it.
    pub fn key(&self) -> &SecretString {
        &self.key
    }

    /// The key in a form safe to print ([`redact_key`]).
    pub fn redacted_key(&self) -> String {
        redact_key(self.key.expose_secret())
    }

    /// Where the key variable was set.
    pub fn key_origin(&self) -> &VarOrigin {
        &self.key_origin
    }

    /// Its proxy setting (a URL, or [`NO_PROXY`]); `None`: the system proxy settings.
    pub fn proxy(&self) -> Option<&EnvSetting> {
        self.proxy.as_ref()
    }

    /// OpenAI: its base URL setting (`None`: `https://api.openai.com/v1`). Azure: its endpoint
    /// setting (always set).
    pub fn url(&self) -> Option<&EnvSetting> {
        self.url.as_ref()
    }

    /// The base URL (OpenAI, default `https://api.openai.com/v1`) or endpoint (Azure) requests
    /// go to.
    pub fn url_or_default(&self) -> &str {
        self.url
            .as_ref()
            .map_or(lbgpt_openai::OPENAI_BASE_URL, |url| url.value.as_str())
    }

    /// Azure: its api-version setting (`None`: the default). OpenAI: `None`.
    pub fn api_version(&self) -> Option<&EnvSetting> {
        self.api_version.as_ref()
    }

    /// Azure: the variable its deployments came from. OpenAI: `None`.
    pub fn deployments_setting(&self) -> Option<&EnvSetting> {
        self.deployments.as_ref().map(|(setting, _)| setting)
    }

    /// Azure: its model -> deployment map. OpenAI: empty.
    pub fn deployments(&self) -> BTreeMap<String, String> {
        self.deployments
            .as_ref()
            .map(|(_, map)| map.clone())
            .unwrap_or_default()
    }

    /// The OpenAI configuration of an OpenAI member (named by its variable), `None` for an
    /// Azure one.
    pub fn openai_config(&self) -> Option<OpenAiConfig> {
        (self.kind == EnvKind::OpenAi).then(|| self.build_openai())
    }

    /// The Azure configuration of an Azure member (named by its variable), `None` for an
    /// OpenAI one.
    pub fn azure_config(&self) -> Option<AzureConfig> {
        (self.kind == EnvKind::Azure).then(|| self.build_azure())
    }

    /// The member as a provider of a balanced client (weight 1, no limits).
    pub fn into_provider(self) -> Provider {
        match self.kind {
            EnvKind::OpenAi => Provider::openai(self.build_openai()),
            EnvKind::Azure => Provider::azure(self.build_azure()),
        }
    }

    fn build_openai(&self) -> OpenAiConfig {
        let mut config = OpenAiConfig::new()
            .api_key(self.key.expose_secret())
            .name(&self.name);
        if let Some(url) = &self.url {
            config = config.base_url(&url.value);
        }
        match self.proxy.as_ref().map(|p| p.value.as_str()) {
            None => config,
            Some(NO_PROXY) => config.no_proxy(),
            Some(url) => config.proxy(url),
        }
    }

    fn build_azure(&self) -> AzureConfig {
        let mut config = AzureConfig::new(self.url_or_default())
            .api_key(self.key.expose_secret())
            .deployments(self.deployments())
            .name(&self.name);
        if let Some(version) = &self.api_version {
            config = config.api_version(&version.value);
        }
        match self.proxy.as_ref().map(|p| p.value.as_str()) {
            None => config,
            Some(NO_PROXY) => config.no_proxy(),
            Some(url) => config.proxy(url),
        }
    }
}

impl From<EnvMember> for Provider {
    fn from(member: EnvMember) -> Self {
        member.into_provider()
    }
}

impl fmt::Debug for EnvMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvMember")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("key", &"[REDACTED]")
            .field("key_origin", &self.key_origin)
            .field("proxy", &self.proxy)
            .field("url", &self.url)
            .field("api_version", &self.api_version)
            .field(
                "deployments",
                &self.deployments.as_ref().map(|(_, map)| map),
            )
            .finish()
    }
}

/// A key in a form safe to print: `sk-…1a2b` (the `sk-` prefix when it has one, and the last
/// four characters) for keys of 20 characters or more, `[set]` for shorter ones (four
/// characters of a short key give too much away).
///
/// ```
/// assert_eq!(lbgpt::env::redact_key("sk-proj-abcdefghijklmnop1a2b"), "sk-…1a2b");
/// assert_eq!(lbgpt::env::redact_key("0123456789abcdef0123456789abcdef"), "…cdef");
/// assert_eq!(lbgpt::env::redact_key("short-key"), "[set]");
/// ```
pub fn redact_key(key: &str) -> String {
    let key = key.trim();
    let count = key.chars().count();
    if count < 20 {
        return "[set]".to_owned();
    }
    let last: String = key.chars().skip(count - 4).collect();
    let prefix = if key.starts_with("sk-") { "sk-" } else { "" };
    format!("{prefix}…{last}")
}

/// A URL safe to print; see [`lbgpt_core::redact_url`] (re-exported here, where the keys and
/// proxies of the environment are read).
pub use lbgpt_core::redact_url;

impl BalancedGptBuilder {
    /// Adds one provider per key in the process environment and `./.env`
    /// ([`EnvKeys::from_process_env`], [`EnvKeys::providers`]), named by its variable.
    ///
    /// Fails when the variables are inconsistent (see [`EnvError`]) or no key is set. For
    /// limits per key, or another source of variables, add
    /// [`EnvKeys::members`] yourself.
    pub fn providers_from_env(self) -> Result<Self, EnvError> {
        let providers = EnvKeys::from_process_env()?.providers()?;
        Ok(self.providers(providers))
    }
}

impl BalancedGpt {
    /// A balanced client over every key in the process environment and `./.env`
    /// ([`BalancedGptBuilder::providers_from_env`]), with the default settings.
    pub fn from_env() -> Result<BalancedGpt, Error> {
        BalancedGpt::builder().providers_from_env()?.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_numbers_as_numbers() {
        let mut names = vec![
            "OPENAI_API_KEY_10",
            "OPENAI_API_KEY_2",
            "OPENAI_API_KEY",
            "OPENAI_API_KEY_1",
            "OPENAI_API_KEY2",
            "OPENAI_API_KEY_02",
            "OPENAI_API_KEY_EU",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "OPENAI_API_KEY",
                "OPENAI_API_KEY2",
                "OPENAI_API_KEY_1",
                "OPENAI_API_KEY_2",
                "OPENAI_API_KEY_02",
                "OPENAI_API_KEY_10",
                "OPENAI_API_KEY_EU",
            ]
        );
    }

    #[test]
    fn suffixes() {
        for ok in ["", "_1", "2", "_EU", "_eu_2", "10b"] {
            assert!(is_suffix(ok), "{ok:?}");
        }
        for bad in ["S", "_", "-1", "_A-B", "S_1"] {
            assert!(!is_suffix(bad), "{bad:?}");
        }
    }

    #[test]
    fn parse_errors_name_the_line_not_the_value() {
        let text = "A=1\n# note\nOPENAI_API_KEY_2='sk-unterminated-SECRET\n";
        let (line, problem) = describe_parse_error(text, "OPENAI_API_KEY_2='sk-unter", 17);
        assert_eq!(line, Some(3));
        assert!(problem.contains("OPENAI_API_KEY_2"), "{problem}");
        assert!(!problem.contains("SECRET"), "{problem}");
    }

    #[test]
    fn url_problems_are_named_without_quoting_the_url() {
        let web = ["http", "https"];
        for ok in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:8080/v1",
            "HTTPS://Example.com",
            "http://me:pw@proxy.internal:3128",
            "http://me:p@ss@proxy:3128/",
            "https://[2001:db8::1]/v1",
            "http://[::1]:8080",
            "http://host:/v1",
            "https://host?key=x",
            "https://bücher.example/v1",
        ] {
            assert_eq!(url_problem(ok, &web), None, "{ok}");
        }
        for (bad, problem) in [
            ("SECRET.openai.com/v1", "no scheme"),
            ("ftp://SECRET@host", "scheme"),
            ("https://", "no host"),
            ("https:///SECRET", "no host"),
            ("http://me:SECRET@", "no host"),
            ("http://me:SECRET@:8080", "no host"),
            ("http://SECRET:port", "port"),
            ("http://SECRET:65536", "port"),
            ("http://ho!st/SECRET", "character"),
            ("http://::1/SECRET", "character"),
            ("http://[::zz]/SECRET", "IPv6"),
            ("http://[::1]x/SECRET", "more than a port"),
            ("http://host/a SECRET", "blank"),
        ] {
            let found = url_problem(bad, &web).unwrap_or_default();
            assert!(found.contains(problem), "{bad}: {found}");
            assert!(!found.contains("SECRET"), "{found}");
        }
    }
}
